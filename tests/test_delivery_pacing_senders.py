"""Telegram and Twilio senders pace the messages a split text becomes, like WhatsApp's: each
arrives at the local provider server one interval after the one before (on a manual clock)."""

from __future__ import annotations

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from channels.base_config import RecipientPace
from channels.send_pacing import RedisRecipientPacer
from channels.telegram.outbound import TelegramConfig, TelegramSender
from channels.twilio.outbound import TwilioConfig, TwilioSender
from events.types.reply_parts import ReplyText
from libs.keys import KeySpace
from tests.delivery_support import ManualClock
from tests.provider_servers import Recorded, TelegramBotServer, TwilioServer

BOT_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"
PACE = RecipientPace(interval_ms=1_000, burst=1, max_wait_s=5)


class ClockedTelegram(TelegramBotServer):
    def __init__(self, clock: ManualClock) -> None:
        super().__init__(BOT_TOKEN)
        self.clock = clock
        self.arrivals: list[float] = []

    def accept(self, request: Recorded) -> web.Response:
        self.arrivals.append(round(self.clock.t - 1_000.0, 3))
        return super().accept(request)


class ClockedTwilio(TwilioServer):
    def __init__(self, clock: ManualClock) -> None:
        super().__init__(ACCOUNT_SID, AUTH_TOKEN)
        self.clock = clock
        self.arrivals: list[float] = []

    def accept(self, request: Recorded) -> web.Response:
        self.arrivals.append(round(self.clock.t - 1_000.0, 3))
        return super().accept(request)


def pacer(
    redis: aioredis.Redis, keys: KeySpace, clock: ManualClock, channel_id: str
) -> RedisRecipientPacer:
    return RedisRecipientPacer(
        redis, keys, tenant_id="acme", channel_id=channel_id, pace=PACE, partitions=2, clock=clock
    )


async def test_a_long_telegram_text_leaves_one_message_a_second(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    clock = ManualClock()
    text = ReplyText(text="\n\n".join(c * 4_000 for c in "abc"))  # 4,096 per message
    async with ClockedTelegram(clock) as server, aiohttp.ClientSession() as session:
        config = TelegramConfig("tg", BOT_TOKEN, base_url=server.base_url)
        sender = TelegramSender(config, session, pacer=pacer(redis, keys, clock, "tg"))
        sent = await sender.send("4242", [text], reply_id="r1")
        await TelegramSender(config, session, pacer=pacer(redis, keys, clock, "tg")).send(
            "5151", [ReplyText(text="oi")], reply_id="r2"
        )
    assert len(sent) == 3
    assert server.arrivals == [0.0, 1.0, 2.0, 2.0], "the other chat was not held back"


async def test_a_long_sms_leaves_one_message_a_second(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    clock = ManualClock()
    text = ReplyText(text=" ".join(["palavra"] * 500))  # 3,999 characters; 1,600 per SMS
    async with ClockedTwilio(clock) as server, aiohttp.ClientSession() as session:
        config = TwilioConfig(
            "sms", ACCOUNT_SID, AUTH_TOKEN, sender="+14155238886", base_url=server.base_url
        )
        sender = TwilioSender(config, session, pacer=pacer(redis, keys, clock, "sms"))
        sent = await sender.send("+5511987654321", [text], reply_id="r1")
    assert len(sent) == 3
    assert server.arrivals == [0.0, 1.0, 2.0]
    assert clock.sleeps == [1.0, 1.0]
