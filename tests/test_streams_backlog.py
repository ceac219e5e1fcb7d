"""Many partitions and long backlogs: reads stay off the command pool, reclaims jump the queue."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from libs.keys import KeySpace
from libs.redis_client import make_redis
from libs.streams import Received
from libs.streams.reading import MAX_READERS_PER_CONSUMER
from tests.streams_support import (
    PROBE_STREAM,
    eventually,
    fast_settings,
    group_pending,
    make_publisher,
    make_runner,
    probe,
)


async def test_32_partitions_run_on_a_command_pool_of_4_connections(
    redis_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=32)
    small_pool = make_redis(redis_url, block_ms=settings.block_ms, max_connections=4)
    seen: set[int] = set()

    async def handle(received: Received) -> None:
        seen.add(received.envelope.payload.n)

    runner = make_runner(small_pool, keys, handle, settings)
    try:
        await runner.start()
        await make_publisher(small_pool, keys, settings).publish_many(
            [probe(n) for n in range(300)]
        )

        async def all_handled() -> bool:
            return len(seen) == 300 and await group_pending(redis, keys, "probe", 32) == 0

        await eventually(all_handled, what="300 events over 32 partitions handled and acked")
        blocked = [
            client
            for client in await redis.client_list()
            if client.get("cmd") == "xreadgroup" and "b" in client.get("flags", "")
        ]
        assert len(blocked) <= MAX_READERS_PER_CONSUMER, "a few reads cover all 32 partitions"
    finally:
        await runner.stop()
        await small_pool.aclose()


async def test_a_dead_consumers_entries_are_reclaimed_ahead_of_a_long_backlog(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1, claim_idle_ms=300, retry_max_ms=200)
    key = keys.stream(PROBE_STREAM, 0)
    publisher = make_publisher(redis, keys, settings)
    await redis.xgroup_create(key, "probe", id="0", mkstream=True)
    await publisher.publish_many([probe(n, "c") for n in range(5)])
    await redis.xreadgroup("probe", "crashed", {key: ">"}, count=5)
    await publisher.publish_many([probe(n, "c") for n in range(5, 400)])
    order: list[int] = []

    async def handle(received: Received) -> None:
        order.append(received.envelope.payload.n)
        await asyncio.sleep(0.005)

    runner = make_runner(
        redis, keys, handle, settings, consumer_name="busy", concurrency=1, batch_size=100
    )
    await runner.start()

    async def reclaimed() -> bool:
        return set(range(5)) <= set(order)

    await eventually(reclaimed, timeout_s=30, what="the dead consumer's entries")
    await runner.stop()
    handled_before = max(order.index(n) for n in range(5))
    assert handled_before < 150, f"reclaimed entries waited behind {handled_before} new ones"
