"""Generic channel sender against a local app that checks the signature."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels.generic.outbound import GenericConfig, GenericSender
from channels.outbound import SentMessage
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import AuthFailed, Rejected
from events.types.reply_parts import ReplyButton, ReplyButtons, ReplyPart, ReplyText
from tests.provider_servers import GenericAppServer, RecordingSleep, Scripted

SECRET = "generic-shared-secret"
NOW = 1_760_000_000


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def app() -> AsyncIterator[GenericAppServer]:
    async with GenericAppServer(SECRET) as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def build(
    app: GenericAppServer,
    session: aiohttp.ClientSession,
    sleep: RecordingSleep,
    secret: str = SECRET,
) -> GenericSender:
    config = GenericConfig(channel_id="app-1", callback_url=app.callback_url, signing_secret=secret)
    retry = SendRetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02, sleep=sleep)
    return GenericSender(config, session, retry=retry, timeout_s=5)


@pytest.fixture
def sender(
    app: GenericAppServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> GenericSender:
    return build(app, session, sleep)


async def test_the_reply_is_posted_whole_and_signed(
    sender: GenericSender, app: GenericAppServer
) -> None:
    parts: list[ReplyPart] = [
        ReplyText(text="Hi"),
        ReplyButtons(text="Pick", buttons=(ReplyButton(id="a", title="A"),)),
    ]
    sent = await sender.send("user-42", parts, reply_id="reply-5")
    [request] = app.requests
    assert request.headers["X-Atende-Reply-Id"] == "reply-5"
    assert request.headers["Idempotency-Key"] == "reply-5"
    signed = request.headers["X-Atende-Timestamp"].encode() + b"." + request.body
    digest = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert request.headers["X-Atende-Signature"] == f"sha256={digest}"
    assert request.json() == {
        "type": "reply",
        "channel_id": "app-1",
        "reply_id": "reply-5",
        "recipient": "user-42",
        "parts": [
            {"kind": "text", "text": "Hi"},
            {"kind": "buttons", "text": "Pick", "buttons": [{"id": "a", "title": "A"}]},
        ],
    }
    assert sent == [SentMessage("app-1", "reply-5", 0), SentMessage("app-2", "reply-5", 1)]


async def test_without_ids_from_the_app_they_derive_from_the_reply_id(
    sender: GenericSender, app: GenericAppServer
) -> None:
    app.script(Scripted(202, {"accepted": True}))
    sent = await sender.send("user-42", [ReplyText(text="Hi")], reply_id="reply-5")
    assert sent == [SentMessage("reply-5:0", "reply-5", 0)]


async def test_each_attempt_is_signed_afresh(
    app: GenericAppServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> None:
    clock = iter([NOW, NOW + 7])
    config = GenericConfig(channel_id="app-1", callback_url=app.callback_url, signing_secret=SECRET)
    sender = GenericSender(
        config,
        session,
        retry=SendRetryPolicy(backoff_initial_s=0.01, backoff_max_s=0.01, sleep=sleep),
        clock=lambda: next(clock),
    )
    app.max_age_s = 10**10  # the fixed clock is in the past
    app.script(Scripted(503, {"error": {"code": "busy", "message": "try later"}}))
    await sender.send("user-42", [ReplyText(text="Hi")], reply_id="reply-5")
    stamps = [request.headers["X-Atende-Timestamp"] for request in app.requests]
    assert stamps == [str(NOW), str(NOW + 7)]


async def test_429_is_retried_after_the_hint(
    sender: GenericSender, app: GenericAppServer, sleep: RecordingSleep
) -> None:
    app.script(Scripted(429, {"error": {"code": "slow_down"}}, {"Retry-After": "0.05"}))
    await sender.send("user-42", [ReplyText(text="Hi")], reply_id="reply-5")
    assert len(app.requests) == 2
    assert sleep.delays == [0.05]


async def test_permanent_400_is_rejected_with_the_apps_code(
    sender: GenericSender, app: GenericAppServer, sleep: RecordingSleep
) -> None:
    app.script(Scripted(400, {"error": {"code": "unknown_user", "message": "no such user"}}))
    with pytest.raises(Rejected, match="no such user") as caught:
        await sender.send("user-42", [ReplyText(text="Hi")], reply_id="reply-5")
    assert caught.value.provider_code == "unknown_user"
    assert len(app.requests) == 1
    assert sleep.delays == []


async def test_a_wrong_secret_is_auth_failed(
    app: GenericAppServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> None:
    sender = build(app, session, sleep, secret="not-the-secret")
    with pytest.raises(AuthFailed) as caught:
        await sender.send("user-42", [ReplyText(text="Hi")], reply_id="reply-5")
    assert caught.value.provider_code == "signature_invalid"
    assert len(app.requests) == 1
