"""Working memory in Redis: on the conversation's slot, with a TTL, bounded, trimmed atomically."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from events.partitions import partition_for
from libs.keys import KeySpace, hash_tag
from memory_manager.config import WorkingMemoryConfig
from memory_manager.errors import WorkingMemoryFull
from memory_manager.working import WorkingMemory
from tests.streams_support import eventually

PARTITIONS = 8


def memory(redis: aioredis.Redis, keys: KeySpace, **limits: int) -> WorkingMemory:
    """Working memory with ``limits`` on top of the defaults."""
    config = WorkingMemoryConfig.model_validate(limits)
    return WorkingMemory(redis, keys, partitions=PARTITIONS, config=config)


async def test_keys_carry_the_conversation_partition_tag(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    working = memory(redis, keys)
    where = working.keys_of("acme", "conv-42")
    tag = hash_tag(partition_for("acme", "conv-42", PARTITIONS))
    assert tag in where.turns
    assert tag in where.values
    assert where.turns.startswith(f"{keys.namespace}:")
    assert key_slot(where.turns.encode()) == key_slot(where.values.encode())
    await working.append_turn("acme", "conv-42", "contact", "hi")
    await working.set_scratch("acme", "conv-42", "cart", {"items": 2})
    assert await redis.exists(where.turns, where.values) == 2


async def test_every_write_sets_the_ttl_and_memory_expires_when_idle(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    working = memory(redis, keys, ttl_s=1)
    await working.append_turn("acme", "c1", "contact", "where is my order?")
    await working.set_pending_tool("acme", "c1", "call-1", {"tool": "orders.lookup"})
    where = working.keys_of("acme", "c1")
    for key in (where.turns, where.values):
        assert 0 < await redis.pttl(key) <= 1_000
    assert not (await working.read("acme", "c1")).empty

    async def expired() -> bool:
        return (await working.read("acme", "c1")).empty

    await eventually(expired, timeout_s=5, what="working memory to expire")


async def test_turns_are_capped_by_count_keeping_the_newest(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    working = memory(redis, keys, max_turns=3)
    kept = [await working.append_turn("acme", "c1", "contact", f"turn {n}") for n in range(5)]
    assert kept == [1, 2, 3, 3, 3]
    snapshot = await working.read("acme", "c1")
    assert [turn.text for turn in snapshot.turns] == ["turn 2", "turn 3", "turn 4"]
    assert {turn.role for turn in snapshot.turns} == {"contact"}


async def test_turns_are_capped_by_bytes_dropping_the_oldest(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    working = memory(redis, keys, max_turns=100, max_turn_bytes=1_000)
    for n in range(10):
        await working.append_turn("acme", "c1", "agent", f"{n}" + "x" * 200)
    where = working.keys_of("acme", "c1")
    stored = await redis.lrange(where.turns, 0, -1)
    total = sum(len(entry) for entry in stored)
    assert total <= 1_000
    assert total + len(stored[0]) > 1_000, "no more was dropped than needed"
    snapshot = await working.read("acme", "c1")
    newest = [str(n) for n in range(10 - len(stored), 10)]
    assert [turn.text[0] for turn in snapshot.turns] == newest


async def test_a_turn_larger_than_the_byte_cap_is_refused_and_changes_nothing(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    working = memory(redis, keys, max_turn_bytes=300)
    await working.append_turn("acme", "c1", "contact", "short")
    with pytest.raises(WorkingMemoryFull, match="exceeds max_turn_bytes \\(300\\)"):
        await working.append_turn("acme", "c1", "contact", "y" * 400)
    assert [turn.text for turn in (await working.read("acme", "c1")).turns] == ["short"]


async def test_values_are_capped_and_a_full_memory_refuses_new_names(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    working = memory(redis, keys, max_values=2, max_value_bytes=64)
    await working.set_scratch("acme", "c1", "name", "Maria")
    await working.set_pending_tool("acme", "c1", "call-1", {"tool": "slots.find"})
    with pytest.raises(WorkingMemoryFull, match=r"already holds max_values \(2\)"):
        await working.set_scratch("acme", "c1", "city", "Recife")
    await working.set_scratch("acme", "c1", "name", "Maria S.")  # replacing is allowed
    with pytest.raises(WorkingMemoryFull, match="more than max_value_bytes"):
        await working.set_scratch("acme", "c1", "name", "z" * 100)
    snapshot = await working.read("acme", "c1")
    assert snapshot.scratch == {"name": "Maria S."}
    assert snapshot.pending_tools == {"call-1": {"tool": "slots.find"}}


async def test_pending_tools_are_cleared_and_conversations_are_apart(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    working = memory(redis, keys)
    await working.set_pending_tool("acme", "c1", "call-1", {"tool": "orders.lookup"})
    await working.set_scratch("acme", "c2", "topic", "refund")
    assert await working.clear_pending_tool("acme", "c1", "call-1")
    assert not await working.clear_pending_tool("acme", "c1", "call-1")
    assert (await working.read("acme", "c1")).empty
    assert (await working.read("acme", "c2")).scratch == {"topic": "refund"}
    assert (await working.read("globex", "c2")).empty
    await working.clear("acme", "c2")
    assert (await working.read("acme", "c2")).empty


async def test_values_that_are_not_json_are_refused(redis: aioredis.Redis, keys: KeySpace) -> None:
    working = memory(redis, keys)
    with pytest.raises(WorkingMemoryFull, match="not JSON-serialisable"):
        await working.set_scratch("acme", "c1", "when", object())
    assert (await working.read("acme", "c1")).empty
