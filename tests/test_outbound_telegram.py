"""Telegram Bot API sender against a local Bot API server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels.outbound import SentMessage
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import AuthFailed, Rejected, UnsupportedPart
from channels.telegram.outbound import TelegramConfig, TelegramSender
from events.types.reply_parts import (
    ReplyButton,
    ReplyButtons,
    ReplyMedia,
    ReplyTemplate,
    ReplyText,
)
from tests.provider_servers import RecordingSleep, TelegramBotServer, telegram_error

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT = "987654321"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def bot_api() -> AsyncIterator[TelegramBotServer]:
    async with TelegramBotServer(BOT_TOKEN) as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def build(
    bot_api: TelegramBotServer,
    session: aiohttp.ClientSession,
    sleep: RecordingSleep,
    token: str = BOT_TOKEN,
) -> TelegramSender:
    config = TelegramConfig(channel_id="tg-main", bot_token=token, base_url=bot_api.base_url)
    retry = SendRetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02, sleep=sleep)
    return TelegramSender(config, session, retry=retry, timeout_s=5)


@pytest.fixture
def sender(
    bot_api: TelegramBotServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> TelegramSender:
    return build(bot_api, session, sleep)


async def test_text_goes_to_send_message_with_the_token_in_the_path(
    sender: TelegramSender, bot_api: TelegramBotServer
) -> None:
    sent = await sender.send(CHAT, [ReplyText(text="Olá")], reply_id="reply-3")
    [request] = bot_api.requests
    assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert request.json() == {"chat_id": CHAT, "text": "Olá"}
    assert request.headers["X-Atende-Reply-Id"] == "reply-3"
    assert sent == [SentMessage("100", "reply-3", 0)]


async def test_buttons_are_an_inline_keyboard(
    sender: TelegramSender, bot_api: TelegramBotServer
) -> None:
    buttons = ReplyButtons(
        text="Pick",
        buttons=(ReplyButton(id="a", title="Option A"), ReplyButton(id="b", title="Option B")),
    )
    await sender.send(CHAT, [buttons], reply_id="reply-3")
    assert bot_api.requests[0].json() == {
        "chat_id": CHAT,
        "text": "Pick",
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Option A", "callback_data": "a"}],
                [{"text": "Option B", "callback_data": "b"}],
            ]
        },
    }


async def test_media_uses_the_method_of_its_kind(
    sender: TelegramSender, bot_api: TelegramBotServer
) -> None:
    parts = [
        ReplyMedia(media_kind="image", url="https://files.example.com/p.jpg", caption="Look"),
        ReplyMedia(media_kind="document", media_id="BQACAgQAAxkBAAIB"),
        ReplyMedia(media_kind="sticker", media_id="CAACAgIAAxkBAAIC", caption="hi"),
    ]
    sent = await sender.send(CHAT, parts, reply_id="reply-3")
    calls = [(r.path.rsplit("/", 1)[1], r.json()) for r in bot_api.requests]
    assert calls == [
        (
            "sendPhoto",
            {"chat_id": CHAT, "photo": "https://files.example.com/p.jpg", "caption": "Look"},
        ),
        ("sendDocument", {"chat_id": CHAT, "document": "BQACAgQAAxkBAAIB"}),
        ("sendSticker", {"chat_id": CHAT, "sticker": "CAACAgIAAxkBAAIC"}),
        ("sendMessage", {"chat_id": CHAT, "text": "hi"}),
    ]
    assert [message.part_index for message in sent] == [0, 1, 2, 2]


async def test_templates_are_unsupported(
    sender: TelegramSender, bot_api: TelegramBotServer
) -> None:
    with pytest.raises(UnsupportedPart, match="no message templates"):
        await sender.send(CHAT, [ReplyTemplate(name="welcome", language="en")], reply_id="r")
    assert bot_api.requests == []


async def test_429_waits_for_the_retry_after_parameter(
    sender: TelegramSender, bot_api: TelegramBotServer, sleep: RecordingSleep
) -> None:
    bot_api.script(telegram_error(429, "Too Many Requests: retry after 0.05", retry_after=0.05))
    sent = await sender.send(CHAT, [ReplyText(text="hi")], reply_id="reply-3")
    assert len(bot_api.requests) == 2
    assert sleep.delays == [0.05]
    assert len(sent) == 1


async def test_500_then_success_sends_one_message(
    sender: TelegramSender, bot_api: TelegramBotServer
) -> None:
    bot_api.script(telegram_error(500, "Internal Server Error"))
    sent = await sender.send(CHAT, [ReplyText(text="hi")], reply_id="reply-3")
    assert len(bot_api.requests) == 2
    assert len(sent) == 1


async def test_chat_not_found_is_rejected_once(
    sender: TelegramSender, bot_api: TelegramBotServer, sleep: RecordingSleep
) -> None:
    bot_api.script(telegram_error(400, "Bad Request: chat not found"))
    with pytest.raises(Rejected) as caught:
        await sender.send(CHAT, [ReplyText(text="hi")], reply_id="reply-3")
    assert caught.value.provider_code == "400"
    assert "chat not found" in str(caught.value)
    assert len(bot_api.requests) == 1
    assert sleep.delays == []


async def test_a_blocked_bot_is_rejected_not_an_auth_failure(
    sender: TelegramSender, bot_api: TelegramBotServer
) -> None:
    bot_api.script(telegram_error(403, "Forbidden: bot was blocked by the user"))
    with pytest.raises(Rejected, match="blocked"):
        await sender.send(CHAT, [ReplyText(text="hi")], reply_id="reply-3")


async def test_a_wrong_token_is_auth_failed_and_never_quoted(
    bot_api: TelegramBotServer, session: aiohttp.ClientSession, sleep: RecordingSleep
) -> None:
    wrong = "123456789:WRONGtokenWRONGtoken"
    sender = build(bot_api, session, sleep, token=wrong)
    with pytest.raises(AuthFailed) as caught:
        await sender.send(CHAT, [ReplyText(text="hi")], reply_id="reply-3")
    assert caught.value.status == 401
    assert wrong not in str(caught.value)
    assert len(bot_api.requests) == 1


async def test_an_unreachable_api_does_not_leak_the_token(session: aiohttp.ClientSession) -> None:
    sleep = RecordingSleep()
    config = TelegramConfig(channel_id="tg", bot_token=BOT_TOKEN, base_url="http://127.0.0.1:9")
    retry = SendRetryPolicy(max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.01, sleep=sleep)
    sender = TelegramSender(config, session, retry=retry, timeout_s=2)
    with pytest.raises(Exception, match="could not be reached") as caught:
        await sender.send(CHAT, [ReplyText(text="hi")], reply_id="reply-3")
    assert BOT_TOKEN not in str(caught.value)
    assert caught.value.attempts == 2  # type: ignore[attr-defined]
