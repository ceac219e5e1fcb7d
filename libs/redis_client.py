"""Redis client lifecycle with the timeouts every wait needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# Blocking reads (XREADGROUP BLOCK) may hold a socket for block_ms; the socket timeout must
# leave room for that, plus network slack.
_SOCKET_SLACK_S = 5.0

# After a restart or failover every pooled connection is dead, and without a retry the first
# command on each fails although the server is back. One retry on a fresh connection covers
# that; a server that is really down still fails fast. Timeouts are not retried: they would
# multiply the wait of blocking reads.
_RECONNECT_RETRIES = 1


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
        retry=Retry(
            ExponentialBackoff(cap=0.5, base=0.05),
            _RECONNECT_RETRIES,
            supported_errors=(RedisConnectionError,),
        ),
    )


def blocking_client(client: aioredis.Redis, connections: int = 1) -> aioredis.Redis:
    """A client with ``connections`` sockets of its own, configured like ``client``.

    Blocking reads hold their socket for up to block_ms; on the command pool they would take
    the connections that acknowledgements and appends need.
    """
    pool = client.connection_pool
    own_pool = aioredis.ConnectionPool(
        connection_class=pool.connection_class,
        max_connections=connections,
        **pool.connection_kwargs,
    )
    return aioredis.Redis.from_pool(own_pool)  # closing the client closes its pool


@asynccontextmanager
async def open_redis(url: str, *, block_ms: int = 1_000) -> AsyncIterator[aioredis.Redis]:
    """Yield a client for ``url`` and close its pool on exit."""
    client = make_redis(url, block_ms=block_ms)
    try:
        yield client
    finally:
        await client.aclose()
