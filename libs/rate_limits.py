"""Rate limiters whose windows live in Redis, so every replica counts against one budget."""

from __future__ import annotations

import redis.asyncio as aioredis
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from libs.keys import KeySpace


def redis_limiter(redis: aioredis.Redis, keys: KeySpace) -> MovingWindowRateLimiter:
    """A moving-window limiter on the process's own Redis connection pool.

    ``limits`` wants a URL; handing it the pool instead keeps one set of connections (and
    works for the embedded server, whose URL only the composition root knows).
    """
    storage = RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=f"{keys.namespace}:limits",
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
    )
    return MovingWindowRateLimiter(storage)
