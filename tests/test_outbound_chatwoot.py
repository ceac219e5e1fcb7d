"""Chatwoot sender (messages, private notes, status) against a local Chatwoot API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels.chatwoot.outbound import ChatwootConfig, ChatwootSender
from channels.outbound import SentMessage
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import AuthFailed, Rejected
from events.types.reply_parts import ReplyButton, ReplyButtons, ReplyMedia, ReplyPart, ReplyText
from tests.provider_servers import ChatwootServer, RecordingSleep, Scripted

ACCOUNT_ID = 3
TOKEN = "SfZ8hK2fM4pQ9wXr"
CONVERSATION = "13098"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def chatwoot() -> AsyncIterator[ChatwootServer]:
    async with ChatwootServer(ACCOUNT_ID, TOKEN) as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def build(
    chatwoot: ChatwootServer,
    session: aiohttp.ClientSession,
    sleep: RecordingSleep,
    token: str = TOKEN,
) -> ChatwootSender:
    config = ChatwootConfig(
        channel_id="cw-main",
        base_url=chatwoot.base_url,
        account_id=ACCOUNT_ID,
        api_access_token=token,
    )
    retry = SendRetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02, sleep=sleep)
    return ChatwootSender(config, session, retry=retry, timeout_s=5)


@pytest.fixture
def sender(
    chatwoot: ChatwootServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> ChatwootSender:
    return build(chatwoot, session, sleep)


MESSAGES_PATH = f"/api/v1/accounts/{ACCOUNT_ID}/conversations/{CONVERSATION}/messages"


async def test_text_is_an_outgoing_message_carrying_the_reply_id(
    sender: ChatwootSender, chatwoot: ChatwootServer
) -> None:
    sent = await sender.send(CONVERSATION, [ReplyText(text="Hello")], reply_id="reply-9")
    [request] = chatwoot.requests
    assert request.path == MESSAGES_PATH
    assert request.headers["api_access_token"] == TOKEN
    assert request.headers["X-Atende-Reply-Id"] == "reply-9"
    assert request.json() == {
        "content": "Hello",
        "message_type": "outgoing",
        "private": False,
        "content_type": "text",
        "content_attributes": {"atende_reply_id": "reply-9"},
    }
    assert sent == [SentMessage("5000", "reply-9", 0)]


async def test_buttons_are_an_input_select_and_media_a_link(
    sender: ChatwootSender, chatwoot: ChatwootServer
) -> None:
    parts: list[ReplyPart] = [
        ReplyButtons(
            text="Pick",
            buttons=(ReplyButton(id="a", title="A"), ReplyButton(id="b", title="B")),
        ),
        ReplyMedia(media_kind="image", url="https://files.example.com/p.jpg", caption="Look"),
    ]
    await sender.send(CONVERSATION, parts, reply_id="reply-9")
    buttons, media = (request.json() for request in chatwoot.requests)
    assert buttons["content_type"] == "input_select"
    assert buttons["content_attributes"] == {
        "items": [{"title": "A", "value": "a"}, {"title": "B", "value": "b"}],
        "atende_reply_id": "reply-9",
    }
    assert media["content"] == "Look\nhttps://files.example.com/p.jpg"


async def test_private_note_and_toggle_status_for_handoff(
    sender: ChatwootSender, chatwoot: ChatwootServer
) -> None:
    await sender.add_private_note(CONVERSATION, "Customer asked for a refund", reply_id="r-1")
    status = await sender.toggle_status(CONVERSATION, "open")
    note, toggle = chatwoot.requests
    assert note.json()["private"] is True
    assert note.json()["message_type"] == "outgoing"
    assert (
        toggle.path == f"/api/v1/accounts/{ACCOUNT_ID}/conversations/{CONVERSATION}/toggle_status"
    )
    assert toggle.headers["api_access_token"] == TOKEN
    assert toggle.json() == {"status": "open"}
    assert status == "open"


async def test_429_is_retried_after_the_hint(
    sender: ChatwootSender, chatwoot: ChatwootServer, sleep: RecordingSleep
) -> None:
    chatwoot.script(Scripted(429, {"error": "Throttled"}, {"Retry-After": "0.05"}))
    await sender.send(CONVERSATION, [ReplyText(text="hi")], reply_id="reply-9")
    assert len(chatwoot.requests) == 2
    assert sleep.delays == [0.05]


async def test_500_then_success_creates_one_message(
    sender: ChatwootSender, chatwoot: ChatwootServer
) -> None:
    chatwoot.script(Scripted(500, {"status": 500, "error": "Internal Server Error"}))
    sent = await sender.send(CONVERSATION, [ReplyText(text="hi")], reply_id="reply-9")
    assert len(chatwoot.requests) == 2
    assert len(sent) == 1


async def test_unknown_conversation_is_rejected_once(
    sender: ChatwootSender, chatwoot: ChatwootServer, sleep: RecordingSleep
) -> None:
    chatwoot.script(Scripted(404, {"error": "Resource could not be found"}))
    with pytest.raises(Rejected, match="Resource could not be found") as caught:
        await sender.send(CONVERSATION, [ReplyText(text="hi")], reply_id="reply-9")
    assert caught.value.status == 404
    assert len(chatwoot.requests) == 1
    assert sleep.delays == []


async def test_wrong_token_is_auth_failed(
    chatwoot: ChatwootServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> None:
    sender = build(chatwoot, session, sleep, token="wrong")
    with pytest.raises(AuthFailed, match="sign in"):
        await sender.toggle_status(CONVERSATION, "resolved")
    assert len(chatwoot.requests) == 1


async def test_a_conversation_id_that_is_not_a_number_is_never_requested(
    sender: ChatwootSender, chatwoot: ChatwootServer
) -> None:
    with pytest.raises(Rejected, match="not a Chatwoot conversation id"):
        await sender.send("../../profile", [ReplyText(text="hi")], reply_id="reply-9")
    assert chatwoot.requests == []
