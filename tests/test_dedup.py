"""Idempotency claims against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from libs.dedup import DedupClaims
from libs.keys import KeySpace


async def test_first_claim_wins_and_second_is_refused(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    claims = DedupClaims(redis)
    key = keys.dedup("wa", 3, "wamid.1")

    assert await claims.claim(key, ttl_s=30)
    assert not await claims.claim(key, ttl_s=30)
    assert await claims.is_claimed(key)


async def test_claim_expires_after_its_ttl(redis: aioredis.Redis, keys: KeySpace) -> None:
    claims = DedupClaims(redis)
    key = keys.dedup_global("tool", "call-1")
    assert await claims.claim(key, ttl_s=0.1)

    async with asyncio.timeout(5):
        while True:
            if not await claims.is_claimed(key):
                break
            await asyncio.sleep(0.02)

    assert await claims.claim(key, ttl_s=30)


async def test_release_lets_the_work_be_claimed_again(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    claims = DedupClaims(redis)
    key = keys.dedup_global("tool", "call-2")
    await claims.claim(key, ttl_s=30)

    assert await claims.release(key)
    assert not await claims.release(key)
    assert not await claims.is_claimed(key)
    assert await claims.claim(key, ttl_s=30)


async def test_claim_many_reports_each_key(redis: aioredis.Redis, keys: KeySpace) -> None:
    claims = DedupClaims(redis)
    batch = [keys.dedup("tg", 1, str(update_id)) for update_id in range(5)]
    await claims.claim(batch[2], ttl_s=30)

    assert await claims.claim_many(batch, ttl_s=30) == [True, True, False, True, True]
    assert await claims.claim_many(batch, ttl_s=30) == [False] * 5
    assert await claims.claim_many([], ttl_s=30) == []


async def test_concurrent_claims_have_one_winner(redis: aioredis.Redis, keys: KeySpace) -> None:
    claims = DedupClaims(redis)
    key = keys.dedup("wa", 0, "wamid.race")

    results = await asyncio.gather(*(claims.claim(key, ttl_s=30) for _ in range(50)))

    assert results.count(True) == 1


@pytest.mark.parametrize("ttl_s", [0, -1, 0.0001])
async def test_a_claim_needs_a_positive_ttl(
    redis: aioredis.Redis, keys: KeySpace, ttl_s: float
) -> None:
    with pytest.raises(ValueError, match="positive TTL"):
        await DedupClaims(redis).claim(keys.dedup_global("x", "y"), ttl_s=ttl_s)
