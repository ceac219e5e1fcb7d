"""Typing indicators against the local WhatsApp Graph API and Telegram Bot API servers.

A turn opening shows the indicator (WhatsApp: read receipt and typing in one call, Telegram:
``sendChatAction``); an open turn is refreshed, a closed one never; a conversation a human
holds shows none; a failed call is counted and dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from channels.config import ChannelsConfig
from consumers.delivery import consumer as delivery_consumer
from consumers.dispatcher import consumer as dispatcher_consumer
from consumers.presence import consumer as presence_consumer
from delivery.capabilities import ChannelCapabilities
from delivery.presence import TypingPresence
from dispatcher.mailbox import Mailbox, MergePolicy, Turn, WaitingMessage
from events.envelope import Envelope
from events.types.routing import RoutingHandoffRequested, TurnMessage
from libs.keys import KeySpace
from libs.observability.metrics import TYPING_INDICATORS
from libs.yaml_config import load_yaml_model
from tests.handoff_support import TENANT, World, running_world
from tests.provider_servers import TelegramBotServer, WhatsAppGraphServer, graph_error
from tests.streams_support import eventually

TOKEN, PHONE_NUMBER_ID = "wa-access-token", "106540352242922"
BOT_TOKEN = "123456:telegram-bot-token"
WA_CONTACT, TG_CHAT = "5511987654321", "98765"
ENV = {"WA_SECRET": "s", "WA_VERIFY": "v", "WA_TOKEN": TOKEN, "TG_SECRET": "t", "TG_BOT": BOT_TOKEN}


def whatsapp_yaml(base_url: str) -> str:
    return (
        "      - id: wa\n        provider: whatsapp\n"
        f"        phone_number_id: '{PHONE_NUMBER_ID}'\n"
        f"        api_base_url: {base_url}\n"
        "        secrets:\n          app_secret: {env: WA_SECRET}\n"
        "          verify_token: {env: WA_VERIFY}\n          access_token: {env: WA_TOKEN}\n"
    )


def telegram_yaml(base_url: str) -> str:
    return (
        f"      - id: tg\n        provider: telegram\n        api_base_url: {base_url}\n"
        "        secrets:\n          secret_token: {env: TG_SECRET}\n"
        "          bot_token: {env: TG_BOT}\n"
    )


@pytest.fixture
async def whatsapp() -> AsyncIterator[WhatsAppGraphServer]:
    async with WhatsAppGraphServer(TOKEN, PHONE_NUMBER_ID) as server:
        yield server


StartWorld = Callable[[str, str, str], Awaitable[World]]


@pytest.fixture
async def start(
    redis_url: str,
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    pg_dsn: str,
    tmp_path: Path,
) -> AsyncIterator[StartWorld]:
    """Starts the dispatcher, delivery and presence workers for one channel."""
    async with AsyncExitStack() as stack:

        async def start_world(channel_yaml: str, channel_id: str, contact: str) -> World:
            return await stack.enter_async_context(
                running_world(
                    redis_url=redis_url,
                    redis=redis,
                    keys=keys,
                    pool=pg_pool,
                    dsn=pg_dsn,
                    tmp_path=tmp_path,
                    channel_yaml=channel_yaml,
                    channel_id=channel_id,
                    provider="whatsapp" if channel_id == "wa" else "telegram",
                    contact=contact,
                    loop_consumers=[dispatcher_consumer, delivery_consumer],
                    extra_consumers=[presence_consumer],
                    env=ENV,
                )
            )

        yield start_world


async def test_a_turn_opening_on_whatsapp_marks_the_message_read_and_shows_typing(
    start: StartWorld, whatsapp: WhatsAppGraphServer
) -> None:
    world = await start(whatsapp_yaml(whatsapp.base_url), "wa", WA_CONTACT)
    await world.say(1, "oi, vocês abrem sábado?")

    async def typed() -> bool:
        return whatsapp.typing_calls() == ["msg-1"]

    await eventually(typed, what="the typing indicator")
    (call,) = whatsapp.requests
    assert call.json() == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "msg-1",
        "typing_indicator": {"type": "text"},
    }
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_turn_opening_on_telegram_sends_the_typing_chat_action(
    start: StartWorld,
) -> None:
    async with TelegramBotServer(BOT_TOKEN) as telegram:
        world = await start(telegram_yaml(telegram.base_url), "tg", TG_CHAT)
        await world.say(1, "olá")

        async def typed() -> bool:
            return telegram.chat_actions() == [(TG_CHAT, "typing")]

        await eventually(typed, what="the chat action")


async def test_a_conversation_handed_to_a_human_shows_no_typing(
    start: StartWorld, whatsapp: WhatsAppGraphServer
) -> None:
    world = await start(whatsapp_yaml(whatsapp.base_url), "wa", WA_CONTACT)
    await world.say(1, "quero falar com um atendente")
    await world.wait_for_status("human")

    async def handoff_text_sent() -> bool:
        return any(r.json().get("type") == "text" for r in whatsapp.requests)

    await eventually(handoff_text_sent, what="the handoff text")
    await world.say(2, "alô?")
    await asyncio.sleep(0.3)  # room for a wrong indicator to show up; none may
    assert whatsapp.typing_calls() == []


# --- the refresh, step by step --------------------------------------------------------------


async def presence_on(
    whatsapp: WhatsAppGraphServer, redis: aioredis.Redis, keys: KeySpace, tmp_path: Path
) -> tuple[TypingPresence, Mailbox, ChannelCapabilities]:
    path = tmp_path / "atende.yaml"
    path.write_text(
        f"tenants:\n  - id: {TENANT}\n    channels:\n" + whatsapp_yaml(whatsapp.base_url)
    )
    channels = load_yaml_model(path, ChannelsConfig, ENV)
    mailbox = Mailbox(redis, keys, partitions=2, holder="test")
    capabilities = ChannelCapabilities(channels, redis=redis, keys=keys)
    presence = TypingPresence(
        redis=redis,
        keys=keys,
        mailbox=mailbox,
        indicators=capabilities.typing,
        partitions=2,
        max_typing_ms=120_000,
    )
    return presence, mailbox, capabilities


def opened(turn: Turn) -> Envelope[RoutingHandoffRequested]:
    payload = RoutingHandoffRequested(
        turn_id=turn.turn_id,
        fencing_token=turn.token,
        channel_id="wa",
        agent_profile="triage",
        messages=tuple(
            TurnMessage(seq=m.seq, event_id=m.event_id, provider_message_id=m.provider_message_id)
            for m in turn.messages
        ),
        deadline_at=datetime.now(UTC) + timedelta(minutes=2),
    )
    return Envelope.new(payload, tenant_id=TENANT, conversation_id=f"wa:{WA_CONTACT}")


async def make_due(redis: aioredis.Redis, key: str) -> None:
    for member in await redis.zrange(key, 0, -1):
        assert isinstance(member, bytes)
        await redis.zadd(key, {member: 0})


async def test_an_open_turn_is_refreshed_and_a_closed_one_never(
    whatsapp: WhatsAppGraphServer, redis: aioredis.Redis, keys: KeySpace, tmp_path: Path
) -> None:
    presence, mailbox, capabilities = await presence_on(whatsapp, redis, keys, tmp_path)
    conversation = mailbox.conversation(TENANT, f"wa:{WA_CONTACT}")
    admitted = await mailbox.admit(conversation, WaitingMessage(1, "e1", "wamid.1"), "enqueue")
    assert admitted.turn is not None
    due_key = keys.typing_due(conversation.partition)
    try:
        assert await presence.turn_opened(opened(admitted.turn)) == "sent"
        due = await redis.zrange(due_key, 0, -1, withscores=True)
        assert len(due) == 1, "the refresh is scheduled"

        await make_due(redis, due_key)
        assert await presence.refresh_due(conversation.partition) == 1
        assert whatsapp.typing_calls() == ["wamid.1", "wamid.1"]

        await mailbox.close(conversation, admitted.turn.token, "enqueue", MergePolicy())
        await make_due(redis, due_key)
        assert await presence.refresh_due(conversation.partition) == 0
        assert whatsapp.typing_calls() == ["wamid.1", "wamid.1"], "a closed turn is not refreshed"
        assert await redis.zcard(due_key) == 0
    finally:
        await capabilities.aclose()


async def test_a_turn_closed_before_its_event_is_read_shows_nothing(
    whatsapp: WhatsAppGraphServer, redis: aioredis.Redis, keys: KeySpace, tmp_path: Path
) -> None:
    presence, mailbox, capabilities = await presence_on(whatsapp, redis, keys, tmp_path)
    conversation = mailbox.conversation(TENANT, f"wa:{WA_CONTACT}")
    admitted = await mailbox.admit(conversation, WaitingMessage(1, "e1", "wamid.1"), "enqueue")
    assert admitted.turn is not None
    await mailbox.close(conversation, admitted.turn.token, "human", MergePolicy())
    try:
        assert await presence.turn_opened(opened(admitted.turn)) == "skipped"
        assert whatsapp.requests == []
    finally:
        await capabilities.aclose()


async def test_a_failed_typing_call_is_counted_not_retried_and_not_refreshed(
    whatsapp: WhatsAppGraphServer, redis: aioredis.Redis, keys: KeySpace, tmp_path: Path
) -> None:
    presence, mailbox, capabilities = await presence_on(whatsapp, redis, keys, tmp_path)
    conversation = mailbox.conversation(TENANT, f"wa:{WA_CONTACT}")
    admitted = await mailbox.admit(conversation, WaitingMessage(1, "e1", "wamid.1"), "enqueue")
    assert admitted.turn is not None
    whatsapp.script(graph_error(2, "Service temporarily unavailable", status=503))
    failed_before = TYPING_INDICATORS.labels("wa", "failed")._value.get()
    try:
        assert await presence.turn_opened(opened(admitted.turn)) == "failed"
        assert len(whatsapp.requests) == 1, "one try, no retry"
        assert TYPING_INDICATORS.labels("wa", "failed")._value.get() == failed_before + 1
        assert await redis.zcard(keys.typing_due(conversation.partition)) == 0
    finally:
        await capabilities.aclose()
