"""Idempotency claims: the first caller to claim a key wins until the claim expires.

Keys come from ``KeySpace.dedup`` (tied to a conversation's partition) or
``KeySpace.dedup_global``. The ingress claims provider message ids inside its own append script;
these claims are for consumers and tools that need "do this once" on their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis


def _ttl_ms(ttl_s: float) -> int:
    ttl_ms = round(ttl_s * 1000)
    if ttl_ms <= 0:
        raise ValueError(f"a claim needs a positive TTL of at least 1 ms, got {ttl_s}s")
    return ttl_ms


class DedupClaims:
    """``SET NX PX`` claims over one Redis client."""

    def __init__(self, redis: aioredis.Redis, *, value: str = "1") -> None:
        self._redis = redis
        self._value = value

    async def claim(self, key: str, ttl_s: float) -> bool:
        """Claim ``key`` for ``ttl_s`` seconds; ``False`` when it is already claimed."""
        return bool(await self._redis.set(key, self._value, nx=True, px=_ttl_ms(ttl_s)))

    async def claim_many(self, keys: Sequence[str], ttl_s: float) -> list[bool]:
        """Claim each key in one round trip; the result says, per key, whether it was new.

        Each claim stands alone (no transaction): a key claimed earlier does not stop the
        others, which is what a batch of independent events needs.
        """
        if not keys:
            return []
        ttl_ms = _ttl_ms(ttl_s)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(key, self._value, nx=True, px=ttl_ms)
            replies = await pipe.execute()
        return [bool(reply) for reply in replies]

    async def release(self, key: str) -> bool:
        """Drop a claim so the work may be done again (e.g. it failed); ``False`` if absent."""
        return bool(await self._redis.delete(key))

    async def is_claimed(self, key: str) -> bool:
        """Whether ``key`` is currently claimed."""
        return bool(await self._redis.exists(key))
