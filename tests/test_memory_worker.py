"""The memory-manager consumer: rows appear, redeliveries change nothing, stale turns ignored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from consumers import discover, select
from consumers.memory_manager import memory_handler
from dispatcher.turns import TurnGuard, TurnLease
from events.catalog import CATALOG
from events.envelope import Envelope
from events.partitions import partition_for
from events.types.memory import Fact, MemoryText, MemoryUpdateRequested
from libs.errors import Drop, Reject
from libs.keys import KeySpace
from libs.streams import ConsumerRunner, Handler, Publisher, Received, RunnerConfig
from memory_manager.config import MemoryConfig
from memory_manager.embedders.deterministic import HashedNgramEmbedder
from memory_manager.errors import EmbeddingDimensionMismatch
from tests.streams_support import eventually, fast_settings
from tests.tool_support import SeededConversation, seed_conversation

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PARTITIONS = 2

_SNAPSHOT = """
SELECT 'fact' AS kind, key AS name, value::text AS value, updated_at FROM facts
UNION ALL
SELECT source_kind, document_key || '#' || chunk_index, content_sha256 || embedding_model,
       updated_at
FROM memory_chunks
ORDER BY 1, 2
"""


@pytest.fixture
def turns(pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace) -> TurnGuard:
    """The stale-turn check on the test's database and Redis namespace."""
    return TurnGuard(pg_pool, redis, keys, partitions=PARTITIONS)


def handler(pool: asyncpg.Pool, turns: TurnGuard) -> Handler:
    """The consumer's handler with the deterministic embedder."""
    return memory_handler(pool, HashedNgramEmbedder(), MemoryConfig(), turns=turns)


def update(
    seeded: SeededConversation, *, token: int | None = None, at: int = 0, **fields: Any
) -> Envelope[MemoryUpdateRequested]:
    """A memory update of the seeded conversation, ``at`` minutes after T0."""
    turn = {"turn_id": seeded.turn_id, "fencing_token": token} if token is not None else {}
    payload = MemoryUpdateRequested.model_validate({**turn, **fields})
    return Envelope.new(
        payload,
        tenant_id=seeded.tenant_id,
        conversation_id=seeded.conversation_id,
        occurred_at=T0 + timedelta(minutes=at),
    )


def received_entry(envelope: Envelope[Any], attempt: int = 1) -> Received:
    """``envelope`` as the runtime would hand it over, received by the memory manager."""
    return Received(envelope, envelope.stream, 0, "1-0", attempt, "memory-manager")


async def test_an_update_published_is_stored_and_a_redelivery_changes_nothing(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool, turns: TurnGuard
) -> None:
    seeded = await seed_conversation(pg_pool)
    event = update(
        seeded,
        token=1,
        facts=[Fact(key="contact.city", value="Recife", source="agent", confidence=0.9)],
        summary="Maria asked about a refund for order 123; the agent explained the policy.",
        embed=[MemoryText(source_id="msg-1", role="contact", text="I want my money back")],
    )
    [consumer] = select(discover(), ["memory-manager"])
    settings = fast_settings(stream_partitions=PARTITIONS)
    await Publisher(redis, keys, partitions=PARTITIONS).publish(event)
    runner = ConsumerRunner(
        consumer,
        handler(pg_pool, turns),
        redis=redis,
        keys=keys,
        registry=CATALOG,
        config=RunnerConfig.for_consumer(consumer, settings),
    )
    await runner.start()

    async def stored() -> bool:
        return len(await pg_pool.fetch(_SNAPSHOT)) == 3

    try:
        await eventually(stored, what="the fact, the summary and the text stored")
    finally:
        await runner.stop()
    before = await pg_pool.fetch(_SNAPSHOT)
    assert [(row["kind"], row["name"]) for row in before] == [
        ("fact", "contact.city"),
        ("summary", f"summary:{seeded.conversation_id}#0"),
        ("summary", "text:msg-1#0"),
    ]
    chunks = await pg_pool.fetch(
        "SELECT tags, contact_id, conversation_id, embedding IS NOT NULL AS embedded"
        " FROM memory_chunks ORDER BY document_key"
    )
    assert [tuple(row["tags"]) for row in chunks] == [("summary",), ("text", "role:contact")]
    assert all(row["embedded"] and row["contact_id"] == seeded.contact_id for row in chunks)
    await handler(pg_pool, turns)(received_entry(event, attempt=2))
    assert await pg_pool.fetch(_SNAPSHOT) == before


async def test_an_older_update_arriving_late_does_not_bring_old_values_back(
    pg_pool: asyncpg.Pool, turns: TurnGuard
) -> None:
    seeded = await seed_conversation(pg_pool)
    remember = handler(pg_pool, turns)
    fact = {"key": "contact.city", "source": "agent"}
    old = update(seeded, at=0, summary="First summary.", facts=[{**fact, "value": "Recife"}])
    new = update(seeded, at=5, summary="Second summary.", facts=[{**fact, "value": "Natal"}])
    await remember(received_entry(new))
    await remember(received_entry(old))
    summary = await pg_pool.fetchval("SELECT content FROM memory_chunks")
    city = await pg_pool.fetchval("SELECT value #>> '{}' FROM facts")
    assert (summary, city) == ("Second summary.", "Natal")


async def test_a_stale_turn_update_is_dropped_and_writes_nothing(
    pg_pool: asyncpg.Pool, turns: TurnGuard
) -> None:
    seeded = await seed_conversation(pg_pool, fencing_token=1)
    await pg_pool.execute(
        "UPDATE conversations SET last_fencing_token = 2 WHERE conversation_id = $1",
        seeded.conversation_id,
    )
    stale = update(
        seeded,
        token=1,
        facts=[{"key": "contact.city", "value": "Recife", "source": "agent"}],
        summary="From a turn that lost its lease.",
    )
    with pytest.raises(Drop, match="stale turn: token 1 < current 2"):
        await handler(pg_pool, turns)(received_entry(stale))
    assert await pg_pool.fetch(_SNAPSHOT) == []
    current = update(seeded, token=2, summary="From the current turn.")
    await handler(pg_pool, turns)(received_entry(current))
    assert await pg_pool.fetchval("SELECT content FROM memory_chunks") == "From the current turn."


async def test_an_update_of_a_turn_superseded_in_redis_only_is_dropped(
    pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace, turns: TurnGuard
) -> None:
    seeded = await seed_conversation(pg_pool, fencing_token=1)
    partition = partition_for(seeded.tenant_id, seeded.conversation_id, PARTITIONS)
    newer = await TurnLease(redis, keys).open_turn(
        partition, seeded.tenant_id, seeded.conversation_id, "worker-b", ttl_ms=10_000
    )
    assert newer is not None  # a newer turn, not yet written to Postgres
    stale = update(seeded, token=1, summary="From the turn that lost its lease.")

    with pytest.raises(Drop, match=f"stale turn: token 1 < current {newer.token}"):
        await handler(pg_pool, turns)(received_entry(stale))
    assert await pg_pool.fetch(_SNAPSHOT) == []
    current = update(seeded, token=newer.token, summary="From the new turn.")
    await handler(pg_pool, turns)(received_entry(current))
    assert await pg_pool.fetchval("SELECT content FROM memory_chunks") == "From the new turn."


async def test_an_unknown_conversation_is_dead_lettered(
    pg_pool: asyncpg.Pool, turns: TurnGuard
) -> None:
    seeded = await seed_conversation(pg_pool)
    event = Envelope.new(
        MemoryUpdateRequested(summary="x"), tenant_id=seeded.tenant_id, conversation_id="nope"
    )
    with pytest.raises(Reject, match="tenant 'acme' has no conversation 'nope'"):
        await handler(pg_pool, turns)(received_entry(event))


async def test_dimensions_are_checked_before_the_first_update(
    pg_pool: asyncpg.Pool, turns: TurnGuard
) -> None:
    seeded = await seed_conversation(pg_pool)
    with pytest.raises(EmbeddingDimensionMismatch, match="384-dimension vectors but memory"):
        memory_handler(pg_pool, HashedNgramEmbedder(384), MemoryConfig(dimension=768), turns=turns)
    wide = memory_handler(
        pg_pool, HashedNgramEmbedder(768), MemoryConfig(dimension=768), turns=turns
    )
    with pytest.raises(EmbeddingDimensionMismatch, match=r"embedding is vector\(384\)"):
        await wide(received_entry(update(seeded, summary="x")))
    assert await pg_pool.fetch(_SNAPSHOT) == []
