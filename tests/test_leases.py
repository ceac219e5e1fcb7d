"""Leases and fencing tokens against a real Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from libs.errors import LeaseNotHeld, StaleFencingToken
from libs.keys import KeySpace
from libs.leases import Lease, LeaseGrant, slot_name


def _kind() -> str:
    # A metric label of its own per test, so counts are not shared between tests.
    return f"test-{uuid.uuid4().hex[:8]}"


async def _wait_until_free(lease: Lease, grant: LeaseGrant) -> None:
    async with asyncio.timeout(5):
        while True:
            if not await lease.is_held(grant):
                return
            await asyncio.sleep(0.01)


async def test_concurrent_acquirers_get_exactly_one_grant(
    redis: aioredis.Redis, keys: KeySpace, redis_url: str
) -> None:
    other = aioredis.Redis.from_url(redis_url)
    try:
        leases = [Lease(redis, keys), Lease(other, keys)]
        attempts = [
            leases[i % 2].acquire("turn:{p3}:t1:c1", f"worker-{i}", ttl_ms=10_000)
            for i in range(60)
        ]
        grants = [grant for grant in await asyncio.gather(*attempts) if grant is not None]
    finally:
        await other.aclose()

    assert len(grants) == 1
    assert await leases[0].is_held(grants[0])
    await leases[0].require_current("turn:{p3}:t1:c1", grants[0].token)


async def test_unknown_or_future_tokens_are_refused(redis: aioredis.Redis, keys: KeySpace) -> None:
    lease = Lease(redis, keys)
    with pytest.raises(StaleFencingToken, match="no fencing token"):
        await lease.require_current("never-issued", 1)

    grant = await lease.acquire("job", "worker-a", ttl_ms=10_000)
    assert grant is not None
    with pytest.raises(StaleFencingToken, match="never issued"):
        await lease.require_current("job", grant.token + 1)


async def test_a_non_holder_cannot_extend_or_release(redis: aioredis.Redis, keys: KeySpace) -> None:
    lease = Lease(redis, keys)
    grant = await lease.acquire("job", "worker-a", ttl_ms=10_000)
    assert grant is not None
    impostors = [
        dataclasses.replace(grant, holder="worker-b"),
        dataclasses.replace(grant, token=grant.token - 1),
    ]

    for impostor in impostors:
        with pytest.raises(LeaseNotHeld, match="no longer held"):
            await lease.extend(impostor, ttl_ms=10_000)
        assert not await lease.release(impostor)

    assert await lease.is_held(grant)
    await lease.extend(grant, ttl_ms=10_000)
    assert await lease.release(grant)
    assert not await lease.release(grant)
    with pytest.raises(LeaseNotHeld):
        await lease.extend(grant, ttl_ms=10_000)


async def test_a_held_lease_is_refused_to_others(redis: aioredis.Redis, keys: KeySpace) -> None:
    lease = Lease(redis, keys)
    assert await lease.acquire("job", "worker-a", ttl_ms=10_000) is not None
    assert await lease.acquire("job", "worker-b", ttl_ms=10_000) is None
    assert await lease.acquire("job", "worker-a", ttl_ms=10_000) is None


async def test_tokens_keep_growing_when_the_fence_is_lost(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    lease = Lease(redis, keys)
    tokens = []
    for _ in range(3):
        grant = await lease.acquire("job", "worker-a", ttl_ms=10_000)
        assert grant is not None
        tokens.append(grant.token)
        assert await lease.release(grant)
        await redis.delete(keys.fence(slot_name("job")))

    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)


async def test_tokens_grow_past_a_fence_ahead_of_the_clock(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    lease = Lease(redis, keys)
    ahead = 2**52  # far past any microsecond clock of this century
    await redis.set(keys.fence(slot_name("job")), ahead)

    grant = await lease.acquire("job", "worker-a", ttl_ms=10_000)

    assert grant is not None
    assert grant.token == ahead + 1


async def test_a_lost_fence_is_restored_by_its_holder(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    lease = Lease(redis, keys)
    grant = await lease.acquire("job", "worker-a", ttl_ms=10_000)
    assert grant is not None
    await redis.delete(keys.fence(slot_name("job")))

    await lease.extend(grant, ttl_ms=10_000)

    await lease.require_current("job", grant.token)


async def test_lease_and_fence_share_a_hash_slot(keys: KeySpace) -> None:
    assert slot_name("turn:{p7}:t:c") == "turn:{p7}:t:c"
    assert slot_name("migrate") == "{migrate}"
    assert slot_name("odd{}") == "{odd{}}"


async def test_hold_keeps_the_lease_past_its_ttl_and_releases_on_exit(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    lease = Lease(redis, keys)
    async with lease.hold("job", "worker-a", ttl_ms=150) as held:
        await asyncio.sleep(0.5)
        assert await lease.is_held(held.grant)
        assert not held.is_lost
        assert await lease.acquire("job", "worker-b", ttl_ms=150) is None

    assert not await lease.is_held(held.grant)
    assert await lease.acquire("job", "worker-b", ttl_ms=150) is not None


async def test_hold_reports_a_lease_taken_over(redis: aioredis.Redis, keys: KeySpace) -> None:
    lease = Lease(redis, keys)
    lost: list[LeaseGrant] = []
    async with lease.hold("job", "worker-a", ttl_ms=300, on_lost=lost.append) as held:
        # Simulate a stall past the TTL: the key vanishes and another worker takes over.
        await redis.delete(keys.lease(slot_name("job")))
        usurper = await lease.acquire("job", "worker-b", ttl_ms=10_000)
        assert usurper is not None
        async with asyncio.timeout(5):
            await held.lost.wait()

    assert lost == [held.grant]
    assert await lease.is_held(usurper)
    with pytest.raises(StaleFencingToken):
        await lease.require_current("job", held.grant.token)


async def test_hold_refuses_when_the_lease_is_taken(redis: aioredis.Redis, keys: KeySpace) -> None:
    lease = Lease(redis, keys)
    assert await lease.acquire("job", "worker-a", ttl_ms=10_000) is not None

    with pytest.raises(LeaseNotHeld, match="held by another holder"):
        async with lease.hold("job", "worker-b", ttl_ms=10_000):
            pytest.fail("the block must not run")


async def test_hold_releases_when_the_block_is_cancelled(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    lease = Lease(redis, keys)
    entered = asyncio.Event()
    grants: list[LeaseGrant] = []

    async def work() -> None:
        async with lease.hold("job", "worker-a", ttl_ms=10_000) as held:
            grants.append(held.grant)
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(work())
    async with asyncio.timeout(5):
        await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not await lease.is_held(grants[0])


async def test_lock_metrics_count_acquires_failures_and_held_time(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    kind = _kind()
    lease = Lease(redis, keys, kind=kind)

    grant = await lease.acquire("job", "worker-a", ttl_ms=10_000)
    assert grant is not None
    assert await lease.acquire("job", "worker-b", ttl_ms=10_000) is None
    assert await lease.acquire("job", "worker-c", ttl_ms=10_000) is None
    await lease.release(grant)

    labels = {"lock": kind}
    assert REGISTRY.get_sample_value("locks_acquired_total", labels) == 1
    assert REGISTRY.get_sample_value("locks_failed_total", labels) == 2
    assert REGISTRY.get_sample_value("locks_duration_seconds_count", labels) == 1


@pytest.mark.parametrize(("ttl_ms", "every_ms"), [(0, None), (100, 100), (100, 0)])
async def test_bad_timings_are_rejected(
    redis: aioredis.Redis, keys: KeySpace, ttl_ms: int, every_ms: int | None
) -> None:
    lease = Lease(redis, keys)
    with pytest.raises(ValueError, match="must be"):
        async with lease.hold("job", "worker-a", ttl_ms=ttl_ms, extend_every_ms=every_ms):
            pass

    # Nothing was acquired on the way to the error.
    assert await lease.acquire("job", "worker-b", ttl_ms=10_000) is not None
