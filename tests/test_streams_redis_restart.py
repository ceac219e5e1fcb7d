"""A consumer survives its Redis going away and coming back empty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from libs.embedded.valkey import EmbeddedValkey
from libs.keys import KeySpace
from libs.redis_client import make_redis
from libs.streams import Received
from tests.streams_support import eventually, fast_settings, make_publisher, make_runner, probe

pytestmark = pytest.mark.slow


async def test_consumer_reconnects_and_recreates_its_group_after_a_redis_restart(
    tmp_path: Path, namespace: str
) -> None:
    server = EmbeddedValkey(tmp_path / "valkey", persist=False)
    await asyncio.to_thread(server.start)
    port = server.port
    settings = fast_settings(stream_partitions=2)
    keys = KeySpace(namespace)
    redis: aioredis.Redis = make_redis(server.url, block_ms=settings.block_ms)
    seen: set[int] = set()

    async def handle(received: Received) -> None:
        seen.add(received.envelope.payload.n)

    runner = make_runner(redis, keys, handle, settings)
    try:
        await runner.start()
        publisher = make_publisher(redis, keys, settings)
        await publisher.publish_many([probe(n) for n in range(5)])

        async def before() -> bool:
            return seen == set(range(5))

        await eventually(before, what="events before the restart")
        server.kill()
        await asyncio.sleep(0.5)  # the runner now fails to read and backs off
        server = EmbeddedValkey(tmp_path / "valkey2", port=port, persist=False)
        await asyncio.to_thread(server.start)
        for n in range(5, 10):  # the publisher reconnects too
            await publisher.publish(probe(n))

        async def after() -> bool:
            return seen == set(range(10))

        await eventually(after, timeout_s=15, what="events after the restart")
    finally:
        await runner.stop()
        await redis.aclose()
        server.stop()


async def test_a_client_answers_at_once_after_the_server_restarts(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "valkey", persist=False)
    await asyncio.to_thread(server.start)
    redis = make_redis(server.url)
    try:
        assert await redis.ping()  # the pool now holds a connection the restart will kill
        server.kill()
        server = EmbeddedValkey(tmp_path / "valkey2", port=server.port, persist=False)
        await asyncio.to_thread(server.start)
        assert await redis.ping()
    finally:
        await redis.aclose()
        server.stop()
