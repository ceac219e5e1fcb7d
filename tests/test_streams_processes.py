"""Worker processes that are killed or stopped: nothing is lost, nothing stays pending."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from libs.keys import KeySpace
from libs.streams import Received
from tests.proc_worker import record_effect
from tests.streams_support import (
    eventually,
    fast_settings,
    group_pending,
    make_publisher,
    make_runner,
    probe,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def worker_process(
    redis_url: str, namespace: str, *options: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """Start ``tests.proc_worker`` and wait until it reads; kill it if the test leaves it."""
    argv = [sys.executable, "-m", "tests.proc_worker", "--redis-url", redis_url]
    argv += ["--namespace", namespace, *options]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, env=os.environ.copy())
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
        assert line.strip() == b"ready", f"worker did not start: {line!r}"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def counter(redis: aioredis.Redis, key: str) -> Callable[[], asyncio.Future[int]]:
    """A reader of an integer counter key (0 when missing)."""

    async def read() -> int:
        return int(await redis.get(key) or 0)

    return read  # type: ignore[return-value]


async def test_sigkilled_worker_mid_batch_loses_nothing_and_effects_happen_once(
    redis_url: str, redis: aioredis.Redis, keys: KeySpace, namespace: str
) -> None:
    total = 200
    settings = fast_settings(stream_partitions=2, claim_idle_ms=500)
    await make_publisher(redis, keys, settings).publish_many([probe(n) for n in range(total)])
    finished = counter(redis, f"{namespace}:finished")

    async with worker_process(redis_url, namespace, "--delay-ms", "25") as victim:

        async def halfway() -> bool:
            return await finished() >= 30

        await eventually(halfway, what="the first worker to be busy")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    pending_after_kill = await group_pending(redis, keys, "probe", 2)
    assert pending_after_kill > 0, "the killed worker held entries it had not acknowledged"

    async def handle(received: Received) -> None:
        await record_effect(redis, namespace, received)

    survivor = make_runner(redis, keys, handle, settings, consumer_name="survivor")
    await survivor.start()
    effects = counter(redis, f"{namespace}:effects")

    async def all_effects() -> bool:
        return await effects() == total

    await eventually(all_effects, timeout_s=20, what=f"{total} effects")
    await survivor.stop()
    effect_keys = [key async for key in redis.scan_iter(match=f"{namespace}:effect:*", count=500)]
    assert len(effect_keys) == total
    assert await effects() == total, "each event's effect happened exactly once"
    assert await group_pending(redis, keys, "probe", 2) == 0


async def test_sigterm_finishes_in_flight_work_leaves_nothing_pending_and_exits_0(
    redis_url: str, redis: aioredis.Redis, keys: KeySpace, namespace: str
) -> None:
    settings = fast_settings(stream_partitions=2)
    await make_publisher(redis, keys, settings).publish_many([probe(n) for n in range(60)])
    started = counter(redis, f"{namespace}:started")
    finished = counter(redis, f"{namespace}:finished")
    options = ("--delay-ms", "400", "--concurrency", "6", "--batch-size", "5")
    async with worker_process(redis_url, namespace, *options) as worker:

        async def busy() -> bool:
            return await started() >= 1

        await eventually(busy, what="handlers in flight")
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 20)
    assert code == 0
    assert await started() > 0
    assert await started() == await finished(), "every handler that started finished"
    assert await group_pending(redis, keys, "probe", 2) == 0
    assert await finished() < 60, "it stopped reading instead of draining the streams"


async def test_workers_killed_before_starting_queued_entries_cause_no_false_dead_letters(
    redis_url: str, redis: aioredis.Redis, keys: KeySpace, namespace: str
) -> None:
    # max_deliveries is 3 (tests.proc_worker's settings). Four workers in turn take all six
    # entries into their queue, start the first one and are SIGKILLed mid-run: only the
    # entries whose handler started count those deliveries.
    settings = fast_settings(stream_partitions=2)
    await make_publisher(redis, keys, settings).publish_many([probe(n, "c") for n in range(6)])
    started = counter(redis, f"{namespace}:started")
    options = ("--delay-ms", "60000", "--concurrency", "1", "--batch-size", "10")
    for round_number in range(1, 5):
        async with worker_process(redis_url, namespace, *options) as victim:

            async def one_more_started(expected: int = round_number) -> bool:
                return await started() >= expected

            await eventually(one_more_started, what=f"a handler start in round {round_number}")
            victim.send_signal(signal.SIGKILL)
            await asyncio.to_thread(victim.wait, 10)
    async with worker_process(redis_url, namespace, "--delay-ms", "1") as survivor:

        async def settled() -> bool:
            return await group_pending(redis, keys, "probe", 2) == 0

        await eventually(settled, timeout_s=20, what="every entry handled or dead-lettered")
        survivor.send_signal(signal.SIGTERM)
        await asyncio.to_thread(survivor.wait, 20)
    dead = sum([await redis.xlen(keys.dead_letters("test.probe", p)) for p in range(2)])
    assert dead == 1, "only the entry whose handler died with three processes is given up"
    assert int(await redis.get(f"{namespace}:effects") or 0) == 5
