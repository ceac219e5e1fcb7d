"""The dispatcher consumer on real Redis and Postgres: messages in, turns out, once each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from consumers.dispatcher import consumer as dispatcher_consumer
from dispatcher.config import ConversationsConfig
from events.catalog import CATALOG
from events.envelope import Envelope
from events.partitions import partition_for
from events.registry import EventRegistry
from events.streams import AGENT_AI_RESPONSE_GENERATED, ROUTING_HANDOFF_REQUESTED
from events.types.inbound_content import InboundReaction, InboundText
from events.types.inbox import ContactIdentity, InboxMessageReceived
from libs.keys import KeySpace
from libs.resources import Resources
from libs.streams import Publisher
from libs.streams.codec import decode_entry
from tests.consumer_support import consumers_running
from tests.streams_support import entries, eventually, fast_settings

TENANT = "clinic"
CHANNEL = "wa-main"


def inbound(seq: int, text: str, contact: str = "5511987654321") -> Envelope[InboxMessageReceived]:
    return Envelope.new(
        InboxMessageReceived(
            channel_id=CHANNEL,
            provider="whatsapp",
            provider_message_id=f"wamid.{contact}.{seq}",
            seq=seq,
            contact=ContactIdentity(provider_user_id=contact, display_name="Ana"),
            message=InboundText(text=text),
            received_at=datetime.now(UTC),
        ),
        tenant_id=TENANT,
        conversation_id=f"{CHANNEL}:{contact}",
    )


async def published(
    redis: aioredis.Redis, keys: KeySpace, stream: str, registry: EventRegistry = CATALOG
) -> list[Envelope[Any]]:
    found = []
    for partition in range(4):
        for _id, fields in await entries(redis, keys.stream(stream, partition)):
            found.append(decode_entry(registry, fields))
    return found


@pytest.fixture
async def running(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool, request: pytest.FixtureRequest
) -> AsyncIterator[Publisher]:
    """The dispatcher consumer running; yields a publisher for inbound events."""
    await pg_pool.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $1)", TENANT)
    await pg_pool.execute(
        "INSERT INTO channels (tenant_id, channel_id, provider, external_id) "
        "VALUES ($1, $2, 'whatsapp', 'pn-1')",
        TENANT,
        CHANNEL,
    )
    conversations = getattr(request, "param", {})
    settings = fast_settings(stream_partitions=4, claim_idle_ms=2_000, retry_max_ms=100)
    publisher = Publisher(redis, keys, partitions=4)
    resources = Resources(
        settings,
        redis,
        keys,
        CATALOG,
        publisher,
        pg_pool,
        {"conversations": ConversationsConfig.model_validate(conversations)},
    )
    async with consumers_running([dispatcher_consumer], resources):
        yield publisher


async def turns_routed(redis: aioredis.Redis, keys: KeySpace) -> list[Any]:
    return [e.payload for e in await published(redis, keys, ROUTING_HANDOFF_REQUESTED)]


async def test_a_message_opens_a_turn_recorded_before_it_is_routed(
    running: Publisher, redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    await running.publish(inbound(1, "Quero agendar uma limpeza"))

    async def routed() -> bool:
        return len(await turns_routed(redis, keys)) == 1

    await eventually(routed, what="the turn to be routed")
    (turn,) = await turns_routed(redis, keys)
    assert [m.seq for m in turn.messages] == [1]
    assert turn.agent_profile == "triage"
    row = await pg_pool.fetchrow(
        "SELECT t.fencing_token, t.status, c.last_fencing_token, c.status AS conversation "
        "FROM turns t JOIN conversations c USING (tenant_id, conversation_id) WHERE turn_id = $1",
        turn.turn_id,
    )
    assert row is not None
    assert (row["fencing_token"], row["last_fencing_token"]) == (turn.fencing_token,) * 2
    assert (row["status"], row["conversation"]) == ("opened", "open")
    message = await pg_pool.fetchrow("SELECT turn_id, kind, body FROM messages WHERE seq = 1")
    assert message is not None
    assert message["turn_id"] == turn.turn_id


async def test_redelivered_and_later_messages_wait_for_the_open_turn(
    running: Publisher, redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    first = inbound(1, "oi")
    await running.publish_many([first, first, inbound(2, "tudo bem?"), inbound(3, "?")])

    async def admitted() -> bool:
        count = await pg_pool.fetchval("SELECT count(*) FROM messages")
        return count == 3 and len(await turns_routed(redis, keys)) >= 1

    await eventually(admitted, what="three messages stored")
    await asyncio.sleep(0.3)
    turns = await turns_routed(redis, keys)
    assert {t.turn_id for t in turns} == {turns[0].turn_id}, "one open turn; the rest wait"
    # Handlers run concurrently, so seq 2 may reach the mailbox before seq 1 opens the turn;
    # a turn takes every message that is in order when it opens, and the rest wait for the next.
    in_turn = [m.seq for m in turns[0].messages]
    assert in_turn in ([1], [1, 2]), in_turn
    waiting = await redis.zcard(keys.mailbox(_partition(), TENANT, f"{CHANNEL}:5511987654321"))
    assert waiting == 3 - len(in_turn)


@pytest.mark.parametrize(
    "running",
    [{"defaults": {"double_text": "merge", "merge_window_ms": 300, "merge_max_wait_ms": 2_000}}],
    indirect=True,
)
async def test_merge_answers_three_quick_messages_in_one_turn(
    running: Publisher, redis: aioredis.Redis, keys: KeySpace
) -> None:
    for seq, text in enumerate(("oi", "queria saber", "o preço da limpeza"), start=1):
        await running.publish(inbound(seq, text))

    async def routed() -> bool:
        return len(await turns_routed(redis, keys)) == 1

    await eventually(routed, what="the merged turn")
    await asyncio.sleep(0.5)
    (turn,) = await turns_routed(redis, keys)
    assert [m.seq for m in turn.messages] == [1, 2, 3]


async def test_asking_for_a_human_hands_off_and_later_messages_open_no_turn(
    running: Publisher, redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    await running.publish(inbound(1, "quero falar com um atendente"))

    async def replied() -> bool:
        return len(await published(redis, keys, AGENT_AI_RESPONSE_GENERATED)) == 1

    await eventually(replied, what="the handoff reply")
    (reply,) = [e.payload for e in await published(redis, keys, AGENT_AI_RESPONSE_GENERATED)]
    assert reply.handoff
    assert reply.handoff_reason == "asked_for_human"
    assert await turns_routed(redis, keys) == []


async def test_reactions_and_our_own_echoes_start_no_turn(
    running: Publisher, redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    reaction = inbound(1, "x")
    reaction = reaction.model_copy(
        update={
            "payload": reaction.payload.model_copy(
                update={"message": InboundReaction(emoji="👍", target_message_id="wamid.ours")}
            )
        }
    )
    await running.publish(reaction)
    await running.publish(inbound(2, "obrigado"))

    async def routed() -> bool:
        return len(await turns_routed(redis, keys)) == 1

    await eventually(routed, what="the text's turn")
    (turn,) = await turns_routed(redis, keys)
    assert [m.seq for m in turn.messages] == [2], "the reaction left no gap and no turn"


def _partition() -> int:
    return partition_for(TENANT, f"{CHANNEL}:5511987654321", 4)


@pytest.mark.parametrize("running", [{"defaults": {"double_text": "reject"}}], indirect=True)
async def test_reject_answers_a_double_text_at_once_without_closing_the_open_turn(
    running: Publisher, redis: aioredis.Redis, keys: KeySpace
) -> None:
    await running.publish(inbound(1, "oi"))

    async def routed() -> bool:
        return len(await turns_routed(redis, keys)) == 1

    await eventually(routed, what="the first turn")
    await running.publish(inbound(2, "alô?"))

    async def replied() -> bool:
        return len(await published(redis, keys, AGENT_AI_RESPONSE_GENERATED)) == 1

    await eventually(replied, what="the rejection's reply")
    (turn,) = await turns_routed(redis, keys)
    (reply,) = [e.payload for e in await published(redis, keys, AGENT_AI_RESPONSE_GENERATED)]
    assert (reply.turn_id, reply.fencing_token) == (turn.turn_id, turn.fencing_token)
    assert not reply.closes_turn
    assert reply.parts[0].text == ConversationsConfig().settings_for("x", "y").reject_text
