"""Redis client lifecycle with the timeouts every wait needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

# Blocking reads (XREADGROUP BLOCK) may hold a socket for block_ms; the socket timeout must
# leave room for that, plus network slack.
_SOCKET_SLACK_S = 5.0


def make_redis(url: str, *, block_ms: int = 1_000, max_connections: int = 256) -> aioredis.Redis:
    """Return a client for ``url`` whose timeouts fit blocking reads of ``block_ms``."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=5.0,
        socket_timeout=block_ms / 1000 + _SOCKET_SLACK_S,
        socket_keepalive=True,
        health_check_interval=15,
        max_connections=max_connections,
        client_name="atende",
    )


@asynccontextmanager
async def open_redis(url: str, *, block_ms: int = 1_000) -> AsyncIterator[aioredis.Redis]:
    """Yield a client for ``url`` and close its pool on exit."""
    client = make_redis(url, block_ms=block_ms)
    try:
        yield client
    finally:
        await client.aclose()
