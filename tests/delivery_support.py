"""A WhatsApp conversation served end to end: the delivery and status consumers on real Redis
and Postgres, the local Graph API server, and the real webhook endpoint for status webhooks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import asyncpg
import redis.asyncio as aioredis

from channels.config import ChannelsConfig
from consumers.delivery import consumer as delivery_consumer
from consumers.delivery_status import consumer as status_consumer
from dispatcher.config import ConversationsConfig
from dispatcher.mailbox import Mailbox, Turn, WaitingMessage
from dispatcher.store import DispatcherStore
from events.catalog import CATALOG
from events.envelope import Envelope
from events.streams import CONVERSATION_HANDOFF_HUMAN
from events.types.agent import AgentResponseGenerated
from events.types.reply_parts import ReplyPart
from libs.keys import KeySpace
from libs.resources import Resources
from libs.streams import Publisher
from libs.streams.codec import decode_entry
from tests.consumer_support import consumers_running
from tests.provider_servers import WhatsAppGraphServer
from tests.streams_support import entries, fast_settings
from tests.webhook_support import PHONE_NUMBER_ID, SECRET, serve

TENANT, CHANNEL, CONTACT = "acme", "wa-main", "5511987654321"
CONVERSATION = f"{CHANNEL}:{CONTACT}"
ACCESS_TOKEN = "EAAGm0PX4ZCpsBAdelivery"
PARTITIONS = 2  # as the webhook endpoint of tests.webhook_support writes


@dataclass
class WhatsAppWorld:
    """What a test drives and looks at."""

    graph: WhatsAppGraphServer
    publisher: Publisher
    mailbox: Mailbox
    store: DispatcherStore
    pool: asyncpg.Pool
    webhook_url: str
    redis: aioredis.Redis
    keys: KeySpace


def channels_config(graph_url: str, **channel: Any) -> ChannelsConfig:
    """Tenant ``acme`` with WhatsApp channel ``wa-main`` sending to ``graph_url``."""
    data = {
        "tenants": [
            {
                "id": TENANT,
                "channels": [
                    {
                        "id": CHANNEL,
                        "provider": "whatsapp",
                        "phone_number_id": PHONE_NUMBER_ID,
                        "api_base_url": graph_url,
                        "secrets": {
                            "app_secret": {"env": "WA_SECRET"},
                            "verify_token": {"env": "WA_VERIFY"},
                            "access_token": {"env": "WA_TOKEN"},
                        },
                        **channel,
                    }
                ],
            }
        ]
    }
    env = {"WA_SECRET": SECRET, "WA_VERIFY": "verify-me", "WA_TOKEN": ACCESS_TOKEN}
    return ChannelsConfig.model_validate(data, context={"env": env})


async def seed(pool: asyncpg.Pool, *, last_inbound_age: timedelta | None) -> None:
    """The tenant, channel, contact and conversation; an inbound message that old, if given."""
    await pool.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $1)", TENANT)
    await pool.execute(
        "INSERT INTO channels (tenant_id, channel_id, provider, external_id) "
        "VALUES ($1, $2, 'whatsapp', $3)",
        TENANT,
        CHANNEL,
        PHONE_NUMBER_ID,
    )
    await pool.execute(
        "INSERT INTO contacts (tenant_id, contact_id, provider, provider_contact_id) "
        "VALUES ($1, 'k1', 'whatsapp', $2)",
        TENANT,
        CONTACT,
    )
    await pool.execute(
        "INSERT INTO conversations (tenant_id, conversation_id, channel_id, contact_id) "
        "VALUES ($1, $2, $3, 'k1')",
        TENANT,
        CONVERSATION,
        CHANNEL,
    )
    if last_inbound_age is not None:
        await add_inbound(pool, 1, age=last_inbound_age)


async def add_inbound(pool: asyncpg.Pool, seq: int, *, age: timedelta) -> None:
    """An inbound message of the contact, written ``age`` ago (by the database's clock)."""
    await pool.execute(
        "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, "
        "provider_message_id, seq, kind, body, occurred_at, created_at) "
        "VALUES ($1, $2, $3, 'in', $4, $5, 'text', $6::jsonb, now() - $7::interval, "
        "now() - $7::interval)",
        TENANT,
        CONVERSATION,
        CHANNEL,
        f"wamid.IN-{seq}",
        seq,
        json.dumps({"text": "Oi"}),
        age,
    )


@asynccontextmanager
async def whatsapp_world(
    redis: aioredis.Redis,
    keys: KeySpace,
    pool: asyncpg.Pool,
    *,
    last_inbound_age: timedelta | None = timedelta(minutes=1),
    channel: Mapping[str, Any] | None = None,
) -> AsyncIterator[WhatsAppWorld]:
    """Delivery and delivery-status consumers running against a local Graph API server."""
    await seed(pool, last_inbound_age=last_inbound_age)
    async with WhatsAppGraphServer(ACCESS_TOKEN, PHONE_NUMBER_ID) as graph:
        channels = channels_config(graph.base_url, **(channel or {}))
        settings = fast_settings(
            stream_partitions=PARTITIONS, claim_idle_ms=2_000, retry_max_ms=100
        )
        publisher = Publisher(redis, keys, partitions=PARTITIONS)
        sections = {"tenants": channels, "conversations": ConversationsConfig()}
        resources = Resources(settings, redis, keys, CATALOG, publisher, pool, sections)
        mailbox = Mailbox(redis, keys, partitions=PARTITIONS, holder="test")
        redis_url = "unused: serve() takes the client"
        webhooks = serve(redis_url, redis, keys, channels)
        base_url = await anext(webhooks)
        try:
            async with consumers_running([delivery_consumer, status_consumer], resources):
                yield WhatsAppWorld(
                    graph,
                    publisher,
                    mailbox,
                    DispatcherStore(pool),
                    pool,
                    f"{base_url}/webhooks/whatsapp/{CHANNEL}",
                    redis,
                    keys,
                )
        finally:
            await anext(webhooks, None)  # runs the server's clean-up after its yield


class TurnOpener(Protocol):
    """What opening a turn needs: the mailbox and the dispatcher's store."""

    mailbox: Mailbox
    store: DispatcherStore


async def open_turn(world: TurnOpener, seq: int = 1) -> Turn:
    """Open a turn over inbound ``seq``, recorded as the dispatcher records it."""
    conversation = world.mailbox.conversation(TENANT, CONVERSATION)
    opened = await world.mailbox.admit(
        conversation, WaitingMessage(seq, f"e{seq}", f"wamid.IN-{seq}"), "enqueue"
    )
    assert opened.turn is not None
    await world.store.record_turn(
        TENANT,
        CONVERSATION,
        turn_id=opened.turn.turn_id,
        token=opened.turn.token,
        seqs=[seq],
        agent_profile="triage",
    )
    return opened.turn


def reply(turn: Turn, *parts: ReplyPart, **extra: Any) -> Envelope[AgentResponseGenerated]:
    """The agent's reply closing ``turn``."""
    payload = AgentResponseGenerated(
        turn_id=turn.turn_id,
        fencing_token=turn.token,
        reply_id=f"{turn.turn_id}:{turn.token}:reply",
        channel_id=CHANNEL,
        parts=parts,
        **extra,
    )
    return Envelope.new(payload, tenant_id=TENANT, conversation_id=CONVERSATION)


class HasPool(Protocol):
    """A test world with its Postgres pool."""

    pool: asyncpg.Pool


async def turn_status(world: HasPool, turn: Turn) -> str | None:
    """The turn's row status (``completed``, ``handed_off``…)."""
    status = await world.pool.fetchval(
        "SELECT status FROM turns WHERE tenant_id = $1 AND turn_id = $2", TENANT, turn.turn_id
    )
    return str(status) if status is not None else None


async def handoffs(world: WhatsAppWorld) -> list[Any]:
    """The ``conversation.handoff.human`` events published, decoded."""
    found = []
    for partition in range(PARTITIONS):
        key = world.keys.stream(CONVERSATION_HANDOFF_HUMAN, partition)
        for _id, fields in await entries(world.redis, key):
            found.append(decode_entry(CATALOG, fields).payload)
    return found


def status_webhook(wamid: str, status: str) -> bytes:
    """A WhatsApp Cloud API status webhook for one message we sent."""
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550783881",
                                    "phone_number_id": PHONE_NUMBER_ID,
                                },
                                "statuses": [
                                    {
                                        "id": wamid,
                                        "status": status,
                                        "timestamp": "1719835299",
                                        "recipient_id": CONTACT,
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


class ManualClock:
    """Time that moves only when a sleep asks it to; every sleep is recorded."""

    def __init__(self) -> None:
        self.t = 1_000.0  # seconds; far from 0 so that "now" is never confused with unset
        self.sleeps: list[float] = []

    def now_ms(self) -> int | None:
        return round(self.t * 1000)

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.t += seconds
