"""Twilio Messages API sender against a local Twilio server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from channels.outbound import SentMessage
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import AuthFailed, RateLimited, Rejected, UnsupportedPart
from channels.twilio.outbound import TwilioConfig, TwilioSender
from events.types.reply_parts import (
    ReplyButton,
    ReplyButtons,
    ReplyMedia,
    ReplyPart,
    ReplyTemplate,
    ReplyText,
)
from tests.provider_servers import RecordingSleep, Scripted, TwilioServer, twilio_error

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"
CALLBACK = "https://atende.example.com/webhooks/twilio/tw-main"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioServer]:
    async with TwilioServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def build(
    twilio: TwilioServer,
    session: aiohttp.ClientSession,
    sleep: RecordingSleep,
    *,
    auth_token: str = AUTH_TOKEN,
    sender: str = "whatsapp:+14155238886",
) -> TwilioSender:
    config = TwilioConfig(
        channel_id="tw-main",
        account_sid=ACCOUNT_SID,
        auth_token=auth_token,
        sender=sender,
        status_callback_url=CALLBACK,
        base_url=twilio.base_url,
        content_sids={"order_update": "HX" + "ab" * 16},
    )
    retry = SendRetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02, sleep=sleep)
    return TwilioSender(config, session, retry=retry, timeout_s=5)


@pytest.fixture
def sender(
    twilio: TwilioServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> TwilioSender:
    return build(twilio, session, sleep)


async def test_text_is_form_encoded_with_basic_auth_and_whatsapp_addresses(
    sender: TwilioSender, twilio: TwilioServer
) -> None:
    sent = await sender.send("+5511987654321", [ReplyText(text="Olá!")], reply_id="reply-7")
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["X-Atende-Reply-Id"] == "reply-7"
    form = dict(request.form())
    assert form["To"] == "whatsapp:+5511987654321"
    assert form["From"] == "whatsapp:+14155238886"
    assert form["Body"] == "Olá!"
    assert sent == [SentMessage(f"SM{1:032x}", "reply-7", 0)]


async def test_the_status_callback_carries_the_reply_id(
    sender: TwilioSender, twilio: TwilioServer
) -> None:
    await sender.send("+5511987654321", [ReplyText(text="hi")], reply_id="reply-7")
    callback = dict(twilio.requests[0].form())["StatusCallback"]
    assert callback.startswith(CALLBACK + "?")
    assert parse_qs(urlsplit(callback).query) == {"atende_reply_id": ["reply-7"]}


async def test_sms_through_a_messaging_service(
    twilio: TwilioServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> None:
    service = "MG" + "1" * 32
    sender = build(twilio, session, sleep, sender=service)
    await sender.send("+15551234567", [ReplyText(text="hi")], reply_id="reply-7")
    form = dict(twilio.requests[0].form())
    assert form["MessagingServiceSid"] == service
    assert "From" not in form
    assert form["To"] == "+15551234567"


async def test_a_number_on_both_media_answers_each_contact_on_the_medium_it_wrote_on(
    twilio: TwilioServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> None:
    sender = build(twilio, session, sleep, sender="+14155238886")
    # The contacts' addresses as the inbound adapter keeps them, medium prefix included.
    await sender.send("whatsapp:+5511987654321", [ReplyText(text="oi")], reply_id="reply-wa")
    await sender.send("+5511987654321", [ReplyText(text="oi")], reply_id="reply-sms")
    whatsapp, sms = (dict(request.form()) for request in twilio.requests)
    assert (whatsapp["From"], whatsapp["To"]) == (
        "whatsapp:+14155238886",
        "whatsapp:+5511987654321",
    )
    assert (sms["From"], sms["To"]) == ("+14155238886", "+5511987654321")


async def test_media_buttons_and_template(sender: TwilioSender, twilio: TwilioServer) -> None:
    parts: list[ReplyPart] = [
        ReplyMedia(media_kind="image", url="https://files.example.com/a.jpg", caption="Photo"),
        ReplyButtons(
            text="Confirm?",
            buttons=(ReplyButton(id="y", title="Yes"), ReplyButton(id="n", title="No")),
        ),
        ReplyTemplate(name="order_update", language="en_US", parameters=("Ana",)),
    ]
    sent = await sender.send("+5511987654321", parts, reply_id="reply-7")
    media, buttons, template = (dict(request.form()) for request in twilio.requests)
    assert media["MediaUrl"] == "https://files.example.com/a.jpg"
    assert media["Body"] == "Photo"
    assert buttons["Body"] == "Confirm?\n\n1. Yes\n2. No"
    assert template["ContentSid"] == "HX" + "ab" * 16
    assert json.loads(template["ContentVariables"]) == {"1": "Ana"}
    assert [message.part_index for message in sent] == [0, 1, 2]


async def test_a_template_without_content_sid_is_unsupported_and_not_sent(
    sender: TwilioSender, twilio: TwilioServer
) -> None:
    with pytest.raises(UnsupportedPart, match="content_sids"):
        await sender.send(
            "+5511987654321", [ReplyTemplate(name="welcome", language="en")], reply_id="r"
        )
    assert twilio.requests == []


async def test_429_is_retried_after_the_hint(
    sender: TwilioSender, twilio: TwilioServer, sleep: RecordingSleep
) -> None:
    throttled = twilio_error(20429, "Too Many Requests", status=429)
    twilio.script(Scripted(429, throttled.body, {"Retry-After": "0.05"}))
    sent = await sender.send("+5511987654321", [ReplyText(text="hi")], reply_id="reply-7")
    assert len(twilio.requests) == 2
    assert sleep.delays == [0.05]
    assert len(sent) == 1


async def test_500_then_success_sends_one_message(
    sender: TwilioSender, twilio: TwilioServer
) -> None:
    twilio.script(twilio_error(20500, "Internal Server Error", status=500))
    sent = await sender.send("+5511987654321", [ReplyText(text="hi")], reply_id="reply-7")
    assert len(twilio.requests) == 2
    assert len(sent) == 1


async def test_invalid_number_is_rejected_with_twilio_code(
    sender: TwilioSender, twilio: TwilioServer, sleep: RecordingSleep
) -> None:
    twilio.script(twilio_error(21211, "The 'To' number +55 is not a valid phone number."))
    with pytest.raises(Rejected) as caught:
        await sender.send("+55", [ReplyText(text="hi")], reply_id="reply-7")
    assert caught.value.provider_code == "21211"
    assert "21211" in str(caught.value)
    assert "https://www.twilio.com/docs/errors/21211" in str(caught.value)
    assert len(twilio.requests) == 1
    assert sleep.delays == []


async def test_wrong_auth_token_is_auth_failed(
    twilio: TwilioServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> None:
    sender = build(twilio, session, sleep, auth_token="wrong")
    with pytest.raises(AuthFailed) as caught:
        await sender.send("+5511987654321", [ReplyText(text="hi")], reply_id="reply-7")
    assert (caught.value.status, caught.value.provider_code) == (401, "20003")
    assert len(twilio.requests) == 1


async def test_rate_limit_code_without_429_status_is_still_rate_limited(
    sender: TwilioSender, twilio: TwilioServer
) -> None:
    twilio.script(*[twilio_error(20429, "Too Many Requests", status=400)] * 3)
    with pytest.raises(RateLimited):
        await sender.send("+5511987654321", [ReplyText(text="hi")], reply_id="reply-7")
    assert len(twilio.requests) == 3
