"""A worker process for tests that kill or stop it: ``python -m tests.proc_worker``.

Its handler makes one idempotent effect per event (claimed by event id), counts every run, and
can be slow so that a signal lands in the middle of a batch.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import redis.asyncio as aioredis

from libs.keys import KeySpace
from libs.observability.logging import configure_logging
from libs.streams import Received
from libs.streams.worker import Worker, stop_on_signals
from tests.streams_support import fast_settings, make_runner

# Claim and effect in one atomic step: a process killed between two separate commands would
# leave the claim without the effect, and every redelivery would then skip it.
_EFFECT_ONCE = """
if redis.call('SET', KEYS[1], 1, 'NX') then return redis.call('INCR', KEYS[2]) end
return 0
"""


async def record_effect(redis: aioredis.Redis, namespace: str, received: Received) -> None:
    """The effect of an event, once per event id however often it is delivered."""
    claim = f"{namespace}:effect:{received.envelope.id}"
    await redis.eval(_EFFECT_ONCE, 2, claim, f"{namespace}:effects")


async def main(args: argparse.Namespace) -> None:
    configure_logging("INFO", "json")  # stderr; stdout carries only the "ready" line
    redis = aioredis.Redis.from_url(args.redis_url)
    keys = KeySpace(args.namespace)
    settings = fast_settings(
        stream_partitions=args.partitions,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        shutdown_grace_s=args.grace_s,
    )

    async def handle(received: Received) -> None:
        await redis.incr(f"{args.namespace}:started")
        await asyncio.sleep(args.delay_ms / 1000)
        await record_effect(redis, args.namespace, received)
        await redis.incr(f"{args.namespace}:finished")

    runner = make_runner(redis, keys, handle, settings, consumer_name=args.consumer_name)
    stop = asyncio.Event()
    stop_on_signals(stop)
    worker = Worker([runner])
    await worker.start()
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        await worker.stop()
        await redis.aclose()


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options of the test worker."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--consumer-name", default="proc-worker")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--grace-s", type=float, default=10.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
