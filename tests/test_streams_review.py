"""Delivery counts and duplicate handling under slow handlers, reclaims and stray cancellations."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import redis.asyncio as aioredis

from libs.keys import KeySpace
from libs.streams import Handler, Received
from tests.streams_support import (
    PROBE_STREAM,
    eventually,
    fast_settings,
    group_pending,
    make_publisher,
    make_runner,
    probe,
)


async def test_entries_waiting_in_the_local_queue_are_not_reclaimed_by_another_consumer(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    # One slow worker reads a whole batch: the last entries wait in its queue for longer than
    # claim_idle_ms. They are ours, not a dead consumer's: nobody may take them from us.
    settings = fast_settings(stream_partitions=1, claim_idle_ms=1_000)
    seen: defaultdict[int, list[tuple[str, int]]] = defaultdict(list)

    def handler(name: str, pause_s: float) -> Handler:
        async def handle(received: Received) -> None:
            seen[received.envelope.payload.n].append((name, received.attempt))
            await asyncio.sleep(pause_s)

        return handle

    slow = make_runner(
        redis,
        keys,
        handler("slow", 0.25),
        settings,
        consumer_name="slow",
        concurrency=1,
        batch_size=8,
    )
    await make_publisher(redis, keys, settings).publish_many([probe(n) for n in range(8)])
    await slow.start()

    async def batch_read() -> bool:
        return await group_pending(redis, keys, "probe", 1) == 8

    await eventually(batch_read, what="the slow consumer to read the batch")
    idle = make_runner(redis, keys, handler("idle", 0), settings, consumer_name="idle")
    await idle.start()

    async def all_done() -> bool:
        return len(seen) == 8 and await group_pending(redis, keys, "probe", 1) == 0

    await eventually(all_done, what="the batch to be handled and acknowledged")
    await asyncio.gather(slow.stop(), idle.stop())
    assert dict(seen) == {n: [("slow", 1)] for n in range(8)}


async def test_reclaimed_entries_keep_their_delivery_count_among_many_of_our_own(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1, claim_idle_ms=1_000, max_deliveries=5)
    key = keys.stream(PROBE_STREAM, 0)
    await redis.xgroup_create(key, "probe", id="0", mkstream=True)
    await make_publisher(redis, keys, settings).publish_many([probe(n) for n in range(30)])
    # A dead consumer read the first and the last entry; ours reads everything between
    # (as if a previous life of it had them in flight).
    await redis.xreadgroup("probe", "dead-consumer", {key: ">"}, count=1)
    await redis.xreadgroup("probe", "ours", {key: ">"}, count=28)
    await redis.xreadgroup("probe", "dead-consumer", {key: ">"}, count=1)
    rows = await redis.xpending_range(key, "probe", "-", "+", 30)
    dead: list[bytes | str | int | memoryview] = [rows[0]["message_id"], rows[-1]["message_id"]]
    # Both were delivered twice already and their consumer is long gone.
    await redis.xclaim(key, "probe", "dead-consumer", 0, dead, idle=10_000, retrycount=2)

    attempts: dict[int, int] = {}

    async def handle(received: Received) -> None:
        attempts.setdefault(received.envelope.payload.n, received.attempt)

    runner = make_runner(redis, keys, handle, settings, consumer_name="ours")
    await runner.start()

    async def reclaimed() -> bool:
        return 0 in attempts and 29 in attempts

    await eventually(reclaimed, what="reclaim of the dead consumer's entries")
    await runner.stop()
    assert (attempts[0], attempts[29]) == (3, 3)


async def test_a_cancelled_error_raised_by_a_handler_does_not_end_a_worker(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    # A handler awaiting something another task cancelled gets CancelledError although its
    # worker was never cancelled; with one worker, losing it would stall the consumer.
    settings = fast_settings(stream_partitions=1)
    attempts: defaultdict[int, list[int]] = defaultdict(list)

    async def handle(received: Received) -> None:
        n = received.envelope.payload.n
        attempts[n].append(received.attempt)
        if n == 0 and received.attempt == 1:
            cancelled = asyncio.get_running_loop().create_future()
            cancelled.cancel()
            await cancelled

    runner = make_runner(redis, keys, handle, settings, concurrency=1)
    await runner.start()
    await make_publisher(redis, keys, settings).publish_many([probe(n) for n in range(4)])

    async def all_handled() -> bool:
        return set(attempts) == {0, 1, 2, 3} and attempts[0] == [1, 2]

    await eventually(all_handled, timeout_s=5, what="every entry handled, the first retried")
    await runner.stop()
    assert await group_pending(redis, keys, "probe", 1) == 0
