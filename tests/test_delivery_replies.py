"""Delivery on real Redis and Postgres against a local app: fenced, once per reply, turn closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from channels.config import ChannelsConfig
from consumers.delivery import consumer as delivery_consumer
from dispatcher.config import ConversationsConfig
from dispatcher.mailbox import Mailbox, Turn, WaitingMessage
from dispatcher.store import DispatcherStore
from events.catalog import CATALOG
from events.envelope import Envelope
from events.streams import CONVERSATION_HANDOFF_HUMAN, ROUTING_HANDOFF_REQUESTED
from events.types.agent import AgentResponseGenerated
from events.types.reply_parts import ReplyText
from libs.keys import KeySpace
from libs.resources import Resources
from libs.streams import Publisher
from libs.streams.codec import decode_entry
from libs.yaml_config import load_yaml_model
from tests.consumer_support import consumers_running
from tests.provider_servers import GenericAppServer
from tests.streams_support import entries, eventually, fast_settings

TENANT, CHANNEL, CONTACT = "clinic", "app", "contact-9"
CONVERSATION = f"{CHANNEL}:{CONTACT}"
SECRET = "app-secret-for-tests"


@dataclass
class World:
    app: GenericAppServer
    publisher: Publisher
    mailbox: Mailbox
    store: DispatcherStore
    pool: asyncpg.Pool


@pytest.fixture
async def world(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool, tmp_path: Path
) -> AsyncIterator[World]:
    await pg_pool.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $1)", TENANT)
    await pg_pool.execute(
        "INSERT INTO channels (tenant_id, channel_id, provider, external_id) "
        "VALUES ($1, $2, 'generic', $2)",
        TENANT,
        CHANNEL,
    )
    await pg_pool.execute(
        "INSERT INTO contacts (tenant_id, contact_id, provider, provider_contact_id) "
        "VALUES ($1, 'k1', 'generic', $2)",
        TENANT,
        CONTACT,
    )
    await pg_pool.execute(
        "INSERT INTO conversations (tenant_id, conversation_id, channel_id, contact_id) "
        "VALUES ($1, $2, $3, 'k1')",
        TENANT,
        CONVERSATION,
        CHANNEL,
    )
    async with GenericAppServer(SECRET) as app:
        path = tmp_path / "atende.yaml"
        path.write_text(
            f"tenants:\n  - id: {TENANT}\n    channels:\n      - id: {CHANNEL}\n"
            f"        provider: generic\n        callback_url: {app.callback_url}\n"
            "        secrets:\n          signing_secret: {env: APP_SECRET}\n"
        )
        channels = load_yaml_model(path, ChannelsConfig, {"APP_SECRET": SECRET})
        settings = fast_settings(stream_partitions=4, claim_idle_ms=2_000, retry_max_ms=100)
        publisher = Publisher(redis, keys, partitions=4)
        sections = {"tenants": channels, "conversations": ConversationsConfig()}
        resources = Resources(settings, redis, keys, CATALOG, publisher, pg_pool, sections)
        mailbox = Mailbox(redis, keys, partitions=4, holder="test")
        async with consumers_running([delivery_consumer], resources):
            yield World(app, publisher, mailbox, DispatcherStore(pg_pool), pg_pool)


async def open_turn(world: World, seq: int) -> Turn:
    conversation = world.mailbox.conversation(TENANT, CONVERSATION)
    opened = await world.mailbox.admit(
        conversation, WaitingMessage(seq, f"e{seq}", f"m{seq}"), "enqueue"
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


def reply(turn: Turn, text: str, **extra: object) -> Envelope[AgentResponseGenerated]:
    payload = AgentResponseGenerated(
        turn_id=turn.turn_id,
        fencing_token=turn.token,
        reply_id=f"{turn.turn_id}:{turn.token}:reply",
        channel_id=CHANNEL,
        parts=(ReplyText(text=text),),
        **extra,  # type: ignore[arg-type]
    )
    return Envelope.new(payload, tenant_id=TENANT, conversation_id=CONVERSATION)


async def test_a_reply_is_sent_once_stored_and_closes_its_turn(world: World) -> None:
    turn = await open_turn(world, 1)
    event = reply(turn, "Olá! Temos horários na sexta.")
    await world.publisher.publish_many([event, event])  # a redelivered reply

    async def sent() -> bool:
        status = await world.pool.fetchval(
            "SELECT status FROM turns WHERE turn_id = $1", turn.turn_id
        )
        return bool(status == "completed")

    await eventually(sent, what="the turn to complete")
    assert len(world.app.requests) == 1, "sent once although delivered twice"
    body = world.app.requests[0].json()
    assert body["parts"][0]["text"] == "Olá! Temos horários na sexta."
    row = await world.pool.fetchrow(
        "SELECT delivery_status, provider_message_id FROM messages WHERE direction = 'out'"
    )
    assert row is not None
    assert (row["delivery_status"], row["provider_message_id"]) == ("sent", "app-1")


async def test_a_superseded_turns_reply_is_never_sent(
    world: World, redis: aioredis.Redis, keys: KeySpace
) -> None:
    first = await open_turn(world, 1)
    conversation = world.mailbox.conversation(TENANT, CONVERSATION)
    newer = await world.mailbox.admit(conversation, WaitingMessage(2, "e2", "m2"), "interrupt")
    assert newer.turn is not None
    await world.store.record_turn(
        TENANT,
        CONVERSATION,
        turn_id=newer.turn.turn_id,
        token=newer.turn.token,
        seqs=[1, 2],
        agent_profile="triage",
        superseded_turn_id=first.turn_id,
    )
    await world.publisher.publish(reply(first, "stale answer"))
    await world.publisher.publish(reply(newer.turn, "current answer"))

    async def current_sent() -> bool:
        return len(world.app.requests) >= 1

    await eventually(current_sent, what="the current reply")
    texts = [r.json()["parts"][0]["text"] for r in world.app.requests]
    assert texts == ["current answer"]


async def test_closing_opens_the_next_turn_and_a_handoff_gives_the_conversation_to_a_human(
    world: World, redis: aioredis.Redis, keys: KeySpace
) -> None:
    turn = await open_turn(world, 1)
    conversation = world.mailbox.conversation(TENANT, CONVERSATION)
    await world.pool.execute(
        "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, "
        "provider_message_id, seq, kind, body) VALUES ($1, $2, $3, 'in', 'm2', 2, 'text', "
        '\'{"text": "e mais uma coisa"}\')',
        TENANT,
        CONVERSATION,
        CHANNEL,
    )
    assert (
        await world.mailbox.admit(conversation, WaitingMessage(2, "e2", "m2"), "enqueue")
    ).outcome == "queued"
    await world.publisher.publish(reply(turn, "primeira resposta"))

    async def next_routed() -> bool:
        routed = []
        for p in range(4):
            routed += await entries(redis, keys.stream(ROUTING_HANDOFF_REQUESTED, p))
        return len(routed) == 1

    await eventually(next_routed, what="the next turn to be routed")
    current = await world.mailbox.current(conversation)
    assert current is not None
    await world.publisher.publish(
        reply(current, "Vou chamar uma pessoa.", handoff=True, handoff_reason="asked_for_human")
    )

    async def handed() -> bool:
        status = await world.pool.fetchval(
            "SELECT status FROM conversations WHERE conversation_id = $1", CONVERSATION
        )
        return bool(status == "human")

    await eventually(handed, what="the conversation to be a human's")
    handoffs = []
    for p in range(4):
        for _id, fields in await entries(redis, keys.stream(CONVERSATION_HANDOFF_HUMAN, p)):
            handoffs.append(decode_entry(CATALOG, fields).payload)
    assert [h.reason for h in handoffs] == ["asked_for_human"]
    assert len(world.app.requests) == 2
