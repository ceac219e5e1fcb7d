"""The Redis a benchmark runs against: the machine's (``REDIS_URL``) or an embedded Valkey."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis.asyncio as aioredis

from libs.embedded.valkey import EmbeddedValkey


@contextmanager
def bench_redis_url() -> Iterator[str]:
    """Yield ``REDIS_URL`` when set, else the URL of a throwaway embedded Valkey."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="atende-bench-") as data_dir:
        server = EmbeddedValkey(Path(data_dir), persist=False)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


async def server_version(redis: aioredis.Redis) -> str:
    """Name and version of the server, e.g. ``valkey 8.1.1`` or ``redis 7.4.2``."""
    info = await redis.info("server")
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"redis {info.get('redis_version', 'unknown')}"


async def delete_keys(redis: aioredis.Redis, prefix: str) -> int:
    """Delete every key whose name starts with ``prefix``; return how many."""
    deleted = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=1_000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += await redis.delete(*batch)
            batch.clear()
    if batch:
        deleted += await redis.delete(*batch)
    return deleted


def child_environment() -> dict[str, str]:
    """This environment minus atende's and OpenTelemetry's settings: children run on defaults.

    So a shell that exports, say, ``ATENDE_CONCURRENCY`` or an OTLP endpoint does not change
    what is measured.
    """
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ATENDE_", "OTEL_")) and name not in ("REDIS_URL", "DATABASE_URL")
    }
