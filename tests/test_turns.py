"""Turns: the turn lease fences out an old holder; TurnGuard is the one stale-token check."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as aioredis

from dispatcher.turns import StaleTurn, TurnGuard, TurnLease, TurnRefs
from events.partitions import partition_for
from libs.errors import StaleFencingToken
from libs.keys import KeySpace
from libs.leases import LeaseGrant
from tests.tool_support import seed_conversation

PARTITIONS = 4


async def _wait_until_free(lease: TurnLease, grant: LeaseGrant) -> None:
    async with asyncio.timeout(5):
        while await lease.is_held(grant):
            await asyncio.sleep(0.01)


async def test_a_new_holder_after_expiry_fences_out_the_old_one(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    turns = TurnLease(redis, keys)
    first = await turns.open_turn(3, "t1", "c1", "worker-a", ttl_ms=100)
    assert first is not None
    await _wait_until_free(turns, first)

    second = await turns.open_turn(3, "t1", "c1", "worker-b", ttl_ms=10_000)

    assert second is not None
    assert second.token > first.token
    with pytest.raises(StaleFencingToken, match="stale"):
        await turns.require_turn(3, "t1", "c1", first.token)
    await turns.require_turn(3, "t1", "c1", second.token)


async def test_the_turn_lease_name_carries_the_partition_tag(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    assert TurnLease(redis, keys).name_for(5, "acme", "wa:55") == "turn:{p5}:acme:wa:55"


async def test_nothing_is_stale_when_no_token_is_on_record(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    guard = TurnGuard(pg_pool, redis, keys, partitions=PARTITIONS)

    assert await guard.current_token("acme", "c1", stored_token=None) is None
    assert await guard.stale("acme", "c1", 1, stored_token=None) is None


async def test_a_token_older_than_the_stored_one_is_stale(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool, fencing_token=5)
    guard = TurnGuard(pg_pool, redis, keys, partitions=PARTITIONS)
    refs = await guard.lookup("acme", seeded.conversation_id, seeded.turn_id)

    assert (refs.tenant_known, refs.conversation_known, refs.turn_known) == (True, True, True)
    assert refs.stored_token == 5
    stale = await guard.stale("acme", seeded.conversation_id, 4, stored_token=refs.stored_token)
    assert stale == StaleTurn(token=4, current=5)
    assert "turn 't' was superseded (its fencing token 4 is older than 5)" in stale.describe("t")
    assert await guard.stale("acme", seeded.conversation_id, 5, stored_token=5) is None


async def test_a_newer_turn_lease_in_redis_makes_the_stored_token_stale(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool, fencing_token=5)
    partition = partition_for("acme", seeded.conversation_id, PARTITIONS)
    newer = await TurnLease(redis, keys).open_turn(
        partition, "acme", seeded.conversation_id, "worker-b", ttl_ms=10_000
    )
    assert newer is not None
    guard = TurnGuard(pg_pool, redis, keys, partitions=PARTITIONS)

    stale = await guard.stale("acme", seeded.conversation_id, 5, stored_token=5)

    assert stale == StaleTurn(token=5, current=newer.token)
    assert await guard.stale("acme", seeded.conversation_id, newer.token, stored_token=5) is None


async def test_lookup_says_which_rows_are_missing(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    guard = TurnGuard(pg_pool, redis, keys, partitions=PARTITIONS)

    unknown_turn = await guard.lookup("acme", seeded.conversation_id, "nope")
    unknown_tenant = await guard.lookup("other", seeded.conversation_id, seeded.turn_id)

    assert (unknown_turn.conversation_known, unknown_turn.turn_known) == (True, False)
    assert unknown_tenant == TurnRefs(False, False, False, None)
