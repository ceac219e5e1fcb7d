"""WhatsApp Cloud API sender against a local Graph API server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels.outbound import SentMessage
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import (
    AuthFailed,
    OutsideMessagingWindow,
    ProviderUnavailable,
    RateLimited,
    Rejected,
)
from channels.whatsapp.outbound import WhatsAppCloudConfig, WhatsAppCloudSender
from events.types.reply_parts import (
    ReplyButton,
    ReplyButtons,
    ReplyMedia,
    ReplyTemplate,
    ReplyText,
)
from tests.provider_servers import RecordingSleep, Scripted, WhatsAppGraphServer, graph_error

TOKEN = "EAAGm0PX4ZCpsBAtest"
PHONE_NUMBER_ID = "106540352242922"
CONTACT = "5511987654321"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def graph() -> AsyncIterator[WhatsAppGraphServer]:
    async with WhatsAppGraphServer(TOKEN, PHONE_NUMBER_ID) as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def sender(
    graph: WhatsAppGraphServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> WhatsAppCloudSender:
    return build(graph, session, sleep)


def build(
    graph: WhatsAppGraphServer,
    session: aiohttp.ClientSession,
    sleep: RecordingSleep,
    token: str = TOKEN,
) -> WhatsAppCloudSender:
    config = WhatsAppCloudConfig(
        channel_id="wa-main",
        phone_number_id=PHONE_NUMBER_ID,
        access_token=token,
        base_url=graph.base_url,
    )
    retry = SendRetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02, sleep=sleep)
    return WhatsAppCloudSender(config, session, retry=retry, timeout_s=5)


def envelope(content: dict[str, object]) -> dict[str, object]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CONTACT,
        "biz_opaque_callback_data": "reply-1",
        **content,
    }


async def test_text_is_posted_with_bearer_token_and_reply_id(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer
) -> None:
    sent = await sender.send(
        f"+{CONTACT}", [ReplyText(text="See https://example.com")], reply_id="reply-1"
    )
    [request] = graph.requests
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == envelope(
        {"type": "text", "text": {"body": "See https://example.com", "preview_url": True}}
    )
    assert sent == [SentMessage("wamid.HBgM000001", "reply-1", 0)]


async def test_a_text_over_the_limit_becomes_several_messages_of_one_part(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer
) -> None:
    text = ("word " * 1000).strip()  # 4999 characters
    sent = await sender.send(CONTACT, [ReplyText(text=text)], reply_id="reply-1")
    bodies = [request.json()["text"]["body"] for request in graph.requests]
    assert len(bodies) == 2
    assert all(len(body) <= 4096 for body in bodies)
    assert " ".join(bodies) == text
    assert [message.part_index for message in sent] == [0, 0]


async def test_media_by_id_and_by_link(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer
) -> None:
    parts = [
        ReplyMedia(media_kind="image", media_id="1234567890", caption="Your receipt"),
        ReplyMedia(media_kind="document", url="https://files.example.com/r.pdf", filename="r.pdf"),
        ReplyMedia(media_kind="voice", url="https://files.example.com/a.ogg", caption="Listen"),
    ]
    sent = await sender.send(CONTACT, parts, reply_id="reply-1")
    bodies = [request.json() for request in graph.requests]
    assert bodies == [
        envelope({"type": "image", "image": {"id": "1234567890", "caption": "Your receipt"}}),
        envelope(
            {
                "type": "document",
                "document": {"link": "https://files.example.com/r.pdf", "filename": "r.pdf"},
            }
        ),
        envelope({"type": "audio", "audio": {"link": "https://files.example.com/a.ogg"}}),
        # Audio takes no caption on WhatsApp, so it follows as text.
        envelope({"type": "text", "text": {"body": "Listen", "preview_url": False}}),
    ]
    assert [message.part_index for message in sent] == [0, 1, 2, 2]


async def test_up_to_three_buttons_are_reply_buttons_with_short_titles(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer
) -> None:
    buttons = ReplyButtons(
        text="Pick one",
        buttons=(
            ReplyButton(id="yes", title="Yes"),
            ReplyButton(id="later", title="Remind me tomorrow morning"),
        ),
    )
    await sender.send(CONTACT, [buttons], reply_id="reply-1")
    [request] = graph.requests
    interactive = request.json()["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "Pick one"}
    assert interactive["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
        {"type": "reply", "reply": {"id": "later", "title": "Remind me tomorrow…"}},
    ]
    assert all(len(b["reply"]["title"]) <= 20 for b in interactive["action"]["buttons"])


async def test_more_than_three_buttons_become_a_list(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer
) -> None:
    choices = tuple(ReplyButton(id=f"slot-{n}", title=f"{n}:00") for n in range(9, 14))
    await sender.send(CONTACT, [ReplyButtons(text="When?", buttons=choices)], reply_id="reply-1")
    interactive = graph.requests[0].json()["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"]["button"] == "Options"
    [section] = interactive["action"]["sections"]
    assert [row["id"] for row in section["rows"]] == [f"slot-{n}" for n in range(9, 14)]


async def test_template_with_body_parameters(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer
) -> None:
    template = ReplyTemplate(name="order_update", language="pt_BR", parameters=("Ana", "#42"))
    await sender.send(CONTACT, [template], reply_id="reply-1")
    assert graph.requests[0].json() == envelope(
        {
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "pt_BR"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ana"},
                            {"type": "text", "text": "#42"},
                        ],
                    }
                ],
            },
        }
    )


async def test_429_is_retried_after_the_retry_after_hint(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer, sleep: RecordingSleep
) -> None:
    throttled = graph_error(130429, "Rate limit hit", status=429)
    graph.script(Scripted(429, throttled.body, {"Retry-After": "0.05"}))
    sent = await sender.send(CONTACT, [ReplyText(text="hi")], reply_id="reply-1")
    assert len(graph.requests) == 2
    assert sleep.delays == [0.05]
    assert len(sent) == 1


async def test_500_then_success_sends_one_message(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer, sleep: RecordingSleep
) -> None:
    graph.script(graph_error(131000, "Something went wrong", status=500))
    sent = await sender.send(CONTACT, [ReplyText(text="hi")], reply_id="reply-1")
    assert len(graph.requests) == 2
    assert len(sleep.delays) == 1
    assert sent == [SentMessage("wamid.HBgM000001", "reply-1", 0)]


async def test_repeated_5xx_gives_up_after_the_attempt_limit(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer
) -> None:
    graph.script(*[graph_error(2, "Service temporarily unavailable", status=503)] * 5)
    with pytest.raises(ProviderUnavailable) as caught:
        await sender.send(CONTACT, [ReplyText(text="hi")], reply_id="reply-1")
    assert len(graph.requests) == 3
    assert caught.value.attempts == 3
    assert caught.value.retryable


async def test_permanent_400_is_rejected_with_the_code_and_not_retried(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer, sleep: RecordingSleep
) -> None:
    graph.script(
        graph_error(131026, "Message undeliverable", details="Recipient is not on WhatsApp")
    )
    with pytest.raises(Rejected) as caught:
        await sender.send(CONTACT, [ReplyText(text="hi")], reply_id="reply-1")
    assert len(graph.requests) == 1
    assert sleep.delays == []
    error = caught.value
    assert (error.status, error.provider_code, error.retryable) == (400, "131026", False)
    assert "131026" in str(error)
    assert "Message undeliverable" in str(error)
    assert "wa-main" in str(error)


async def test_wrong_token_is_auth_failed(
    graph: WhatsAppGraphServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> None:
    sender = build(graph, session, sleep, token="EAAG-expired")
    with pytest.raises(AuthFailed) as caught:
        await sender.send(CONTACT, [ReplyText(text="hi")], reply_id="reply-1")
    assert caught.value.provider_code == "190"
    assert not caught.value.retryable
    assert len(graph.requests) == 1


async def test_re_engagement_error_asks_for_a_template(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer
) -> None:
    graph.script(
        graph_error(
            131047,
            "Re-engagement message",
            subcode=2494010,
            details="More than 24 hours have passed since the recipient last replied.",
        )
    )
    with pytest.raises(OutsideMessagingWindow) as caught:
        await sender.send(CONTACT, [ReplyText(text="hi")], reply_id="reply-1")
    assert not caught.value.retryable
    assert caught.value.provider_code == "131047"
    assert "template" in str(caught.value)
    assert len(graph.requests) == 1


async def test_a_failure_reports_the_parts_already_sent(
    sender: WhatsAppCloudSender, graph: WhatsAppGraphServer
) -> None:
    graph.script(Scripted(200, {"messages": [{"id": "wamid.first"}]}), graph_error(100, "bad"))
    with pytest.raises(Rejected) as caught:
        await sender.send(
            CONTACT, [ReplyText(text="one"), ReplyText(text="two")], reply_id="reply-1"
        )
    assert caught.value.sent == (SentMessage("wamid.first", "reply-1", 0),)


async def test_a_hint_beyond_the_time_budget_is_left_to_the_caller(
    graph: WhatsAppGraphServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> None:
    config = WhatsAppCloudConfig(
        channel_id="wa-main",
        phone_number_id=PHONE_NUMBER_ID,
        access_token=TOKEN,
        base_url=graph.base_url,
    )
    sender = WhatsAppCloudSender(
        config, session, retry=SendRetryPolicy(max_total_s=5, sleep=sleep), timeout_s=5
    )
    graph.script(Scripted(429, graph_error(80007, "Rate limit").body, {"Retry-After": "120"}))
    with pytest.raises(RateLimited) as caught:
        await sender.send(CONTACT, [ReplyText(text="hi")], reply_id="reply-1")
    assert caught.value.retry_after_s == 120
    assert sleep.delays == []
    assert len(graph.requests) == 1


def test_config_rejects_a_phone_number_instead_of_its_id() -> None:
    with pytest.raises(ValueError, match="phone_number_id"):
        WhatsAppCloudConfig(channel_id="wa", phone_number_id="+5511999", access_token="t")
