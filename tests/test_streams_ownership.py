"""An entry is run by one consumer at a time, and only its owner retries or dead-letters it."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import redis as sync_redis
import redis.asyncio as aioredis

from libs.errors import Reject, RetryLater
from libs.keys import KeySpace
from libs.streams import ConsumerRunner, Handler, Received
from libs.streams.codec import entry_fields
from libs.streams.partitions import stream_partitions
from libs.streams.pending import PendingEntries
from tests.streams_support import (
    PROBE_STREAM,
    entries,
    eventually,
    fast_settings,
    group_pending,
    make_publisher,
    make_runner,
    probe,
)


@dataclass
class Runs:
    """Every handler run: which consumer, which attempt, and how many ran at once."""

    log: list[tuple[str, int]] = field(default_factory=list)
    running: int = 0
    peak: int = 0

    def enter(self, consumer: str, attempt: int) -> None:
        self.log.append((consumer, attempt))
        self.running += 1
        self.peak = max(self.peak, self.running)

    def leave(self) -> None:
        self.running -= 1


async def test_a_handler_running_3x_claim_idle_is_kept_alive_and_runs_once(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1, claim_idle_ms=300, retry_max_ms=200)
    runs = Runs()
    slow_started = asyncio.Event()

    def handler(consumer: str, seconds: float) -> Handler:
        async def handle(received: Received) -> None:
            runs.enter(consumer, received.attempt)
            slow_started.set()
            await asyncio.sleep(seconds)
            runs.leave()

        return handle

    slow = make_runner(redis, keys, handler("slow", 0.9), settings, consumer_name="slow")
    other = make_runner(redis, keys, handler("other", 0), settings, consumer_name="other")
    await slow.start()
    await make_publisher(redis, keys, settings).publish(probe(1, "c"))
    await asyncio.wait_for(slow_started.wait(), 10)
    await other.start()  # reclaims every 100 ms: it would take the entry once idle 300 ms

    async def acknowledged() -> bool:
        return bool(runs.log) and await group_pending(redis, keys, "probe", 1) == 0

    await eventually(acknowledged, what="the slow handler to finish")
    await asyncio.gather(slow.stop(), other.stop())
    assert runs.log == [("slow", 1)]
    assert runs.peak == 1


async def test_an_entry_waiting_for_its_retry_is_kept_alive_and_not_taken_over(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    # Run 300 ms, then wait 390 ms for the retry: with nothing keeping it alive, idle long
    # enough for a peer of the group to reclaim it.
    settings = fast_settings(stream_partitions=1, claim_idle_ms=400, retry_max_ms=390)
    key = keys.stream(PROBE_STREAM, 0)
    runs = Runs()

    async def handle(received: Received) -> None:
        runs.enter("owner", received.attempt)
        try:
            await asyncio.sleep(0.3)
        finally:
            runs.leave()
        if len(runs.log) == 1:
            raise RetryLater("not yet", delay_ms=390)

    owner = make_runner(redis, keys, handle, settings, consumer_name="owner")
    await owner.start()
    await make_publisher(redis, keys, settings).publish(probe(1, "c"))
    taken: list[object] = []

    async def peer_reclaims() -> None:
        # A peer that reclaims entries idle 300 ms: its ticks do not line up with the
        # owner's, so it sees the entry idle before the owner's own reclaim would.
        while True:
            taken.extend(await redis.xautoclaim(key, "probe", "peer", 300, justid=True))
            await asyncio.sleep(0.02)

    peer = asyncio.create_task(peer_reclaims())

    async def done() -> bool:
        return len(runs.log) >= 2 and await group_pending(redis, keys, "probe", 1) == 0

    try:
        await eventually(done, what="the retry to succeed on its owner")
    finally:
        peer.cancel()
        await owner.stop()
    assert taken == [], "the waiting entry never looked abandoned"
    assert runs.log == [("owner", 1), ("owner", 2)], "attempts counted in Redis"


async def test_only_the_owner_dead_letters_an_entry(redis: aioredis.Redis, keys: KeySpace) -> None:
    settings = fast_settings(stream_partitions=1)
    key = keys.stream(PROBE_STREAM, 0)

    async def handle(received: Received) -> None:
        # Meanwhile another consumer took the entry over (we looked dead to it).
        await redis.xclaim(key, "probe", "usurper", 0, [received.entry_id], justid=True)
        raise Reject("poison")

    runner = make_runner(redis, keys, handle, settings, consumer_name="victim")
    await runner.start()
    await make_publisher(redis, keys, settings).publish(probe(1, "c"))

    async def claimed() -> bool:
        return await group_pending(redis, keys, "probe", 1) == 1 and bool(
            await redis.xpending_range(key, "probe", "-", "+", 1, consumername="usurper")
        )

    await eventually(claimed, what="the takeover")
    await asyncio.sleep(0.2)
    await runner.stop()
    assert await entries(redis, keys.dead_letters(PROBE_STREAM, 0)) == []
    owner = await redis.xpending_range(key, "probe", "-", "+", 1)
    assert owner[0]["consumer"] == b"usurper", "still pending, the usurper's to finish"


async def test_consumers_of_dead_processes_are_pruned_when_they_own_nothing(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1, claim_idle_ms=60_000, consumer_prune_idle_s=0.3)
    key = keys.stream(PROBE_STREAM, 0)
    await redis.xgroup_create(key, "probe", id="0", mkstream=True)
    await make_publisher(redis, keys, settings).publish_many([probe(n, "c") for n in range(2)])
    await redis.xreadgroup("probe", "dead-idle", {key: ">"}, count=1)
    await redis.xack(key, "probe", (await entries(redis, key))[0][0])
    await redis.xreadgroup("probe", "dead-holding", {key: ">"}, count=1)

    async def handle(received: Received) -> None:
        return None

    runner = make_runner(redis, keys, handle, settings, consumer_name="alive")
    await runner.start()

    async def pruned() -> bool:
        names = {c["name"] for c in await redis.xinfo_consumers(key, "probe")}
        return b"dead-idle" not in names

    await eventually(pruned, what="the idle consumer to be removed")
    names = {c["name"] for c in await redis.xinfo_consumers(key, "probe")}
    assert names == {b"dead-holding", b"alive"}, "one that owns entries stays, and so do we"
    await runner.stop()


async def test_reclaimed_entries_do_not_count_as_deliveries_until_their_handler_starts(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1)
    key = keys.stream(PROBE_STREAM, 0)
    await redis.xgroup_create(key, "probe", id="0", mkstream=True)
    await make_publisher(redis, keys, settings).publish(probe(1, "c"))
    await redis.xreadgroup("probe", "crashed", {key: ">"}, count=1)
    where = stream_partitions(keys, [PROBE_STREAM], 1)[0]
    for n in range(10):  # ten consumers that reclaimed it and died before starting it
        assert await PendingEntries(redis, "probe", f"gone-{n}").reclaim_idle(where, 0, 10)
    seen: list[int] = []

    async def handle(received: Received) -> None:
        seen.append(received.attempt)

    runner: ConsumerRunner = make_runner(redis, keys, handle, settings, consumer_name="last")
    await runner.start()

    async def handled() -> bool:
        return bool(seen) and await group_pending(redis, keys, "probe", 1) == 0

    await eventually(handled, what="the entry to be handled, not dead-lettered")
    await runner.stop()
    assert seen == [2], "one read that may have started it, then this start"
    assert await entries(redis, keys.dead_letters(PROBE_STREAM, 0)) == []


async def test_a_read_parsed_after_a_freeze_is_checked_before_its_handler_runs(
    redis_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    # The loop freezes (synchronous work, SIGSTOP) while a read is in flight; an entry it
    # delivers meanwhile goes idle past claim_idle_ms and a peer takes it over.
    settings = fast_settings(stream_partitions=1, claim_idle_ms=600, block_ms=3_000)
    key = keys.stream(PROBE_STREAM, 0)
    frozen, done = threading.Event(), threading.Event()
    runs: list[tuple[int, int]] = []

    def peer() -> None:
        # A live peer: it takes the entry once idle, then keeps it alive while it works.
        frozen.wait(10)
        time.sleep(0.3)
        client = sync_redis.Redis.from_url(redis_url)
        # Delivered to the frozen consumer's read in flight.
        entry_id = client.xadd(key, entry_fields(probe(2, "c")))  # type: ignore[arg-type]
        time.sleep(1.0)
        client.xautoclaim(key, "probe", "peer", 600, "0-0", justid=True)
        while not done.wait(0.1):
            client.xclaim(key, "probe", "peer", 0, [entry_id], justid=True)
        client.close()

    async def handle(delivery: Received) -> None:
        runs.append((delivery.envelope.payload.n, delivery.attempt))
        if delivery.envelope.payload.n == 1:
            await asyncio.sleep(0.1)  # the reader sends its next read
            frozen.set()
            time.sleep(2.0)  # noqa: ASYNC251 - the point: the whole event loop stops

    runner = make_runner(redis, keys, handle, settings, consumer_name="frozen")
    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    await runner.start()
    await make_publisher(redis, keys, settings).publish(probe(1, "c"))

    async def taken_over() -> bool:
        rows = await redis.xpending_range(key, "probe", "-", "+", 10, consumername="peer")
        return bool(rows)

    await eventually(taken_over, what="the peer's takeover")
    await asyncio.sleep(1.5)  # room for the frozen consumer to (wrongly) run it
    await runner.stop()
    done.set()
    thread.join(5)
    assert runs == [(1, 1)], "the entry the peer took over did not run here too"
