"""Leases with fencing tokens: at most one holder per name, and a token that only grows.

A lease is a Redis key holding ``"<token>:<holder>"`` with a TTL; its fencing counter lives in a
second key. Both keys carry the same hash tag, so each Lua script below touches one slot and the
layout runs unchanged on Redis Cluster. Every side effect of a holder carries its token and is
refused (``require_current``) once a newer token was issued, so a holder that stalled past its
TTL cannot write after someone else took over.

A conversation's turn lease, and the check of its tokens, live in ``dispatcher.turns``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from libs.errors import LeaseNotHeld, StaleFencingToken
from libs.keys import KeySpace
from libs.observability.metrics import LOCKS_ACQUIRED, LOCKS_DURATION, LOCKS_FAILED

log = structlog.get_logger(__name__)

# The token is max(last issued + 1, Redis TIME in microseconds).
# - While the fence key exists, "last + 1" makes every token strictly greater than the previous.
# - If the fence key is gone (expired after its retention, evicted, lost in a failover or a flush),
#   the server clock takes over: an earlier token was at most the clock of its own issue (a
#   script takes far longer than one microsecond, so "+1" can never outrun the clock), hence
#   the clock now is already past it. This relies on the server clock not stepping backwards
#   across the loss, which is why the fence is still kept for a retention period instead of
#   living only as long as the lease.
# Lua numbers are doubles: integers are exact up to 2^53, i.e. microseconds until the year
# 2255; '%.0f' keeps all digits when the token is written back as a string.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local token = string.format('%.0f', math.max(last + 1, now_us))
redis.call('SET', KEYS[2], token, 'PX', ARGV[3])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return {token, now[1], now[2]}
"""

# A fence lost while its lease is still held is written back, so the holder's own
# require_current keeps passing; nobody else can have been issued a token meanwhile because
# the lease key was never free.
_EXTEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if last < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

DEFAULT_FENCE_RETENTION_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """Proof of holding a lease: its name, holder, fencing token and when it was acquired."""

    name: str
    holder: str
    token: int
    acquired_at: datetime
    """Redis server time of the acquisition (UTC)."""
    acquired_monotonic_s: float = field(repr=False, compare=False)
    """Local monotonic clock at acquisition, for the held-time metric."""

    @property
    def value(self) -> str:
        """What the lease key holds while this grant is current."""
        return f"{self.token}:{self.holder}"


def _text(raw: bytes | str | int) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _extend_interval_s(ttl_ms: int, extend_every_ms: int | None) -> float:
    every_ms = extend_every_ms if extend_every_ms is not None else ttl_ms // 3
    if not 0 < every_ms < ttl_ms:
        raise ValueError(
            f"extend_every_ms must be in (0, ttl_ms={ttl_ms}) so the lease is extended before "
            f"it expires, got {every_ms}"
        )
    return every_ms / 1000


def slot_name(name: str) -> str:
    """``name`` if it carries a hash tag, else ``{name}``: lease and fence must share a slot."""
    start = name.find("{")
    end = name.find("}", start + 1) if start >= 0 else -1
    if start >= 0 and end > start + 1:
        return name
    return f"{{{name}}}"


class Lease:
    """Named leases with fencing tokens over one Redis client.

    ``kind`` labels the lock metrics and must stay low-cardinality (``"turn"``, ``"migrate"``).
    The fence of a name is kept ``fence_retention_ms`` after its last acquire or extend, so
    ``require_current`` can still tell a straggler that it was superseded.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        *,
        kind: str = "lease",
        fence_retention_ms: int = DEFAULT_FENCE_RETENTION_MS,
    ) -> None:
        if fence_retention_ms <= 0:
            raise ValueError(f"fence_retention_ms must be positive, got {fence_retention_ms}")
        self._redis = redis
        self._keys = keys
        self.kind = kind
        self._fence_retention_ms = fence_retention_ms
        # register_script computes the SHA once; calls use EVALSHA and load on NOSCRIPT.
        self._acquire = redis.register_script(_ACQUIRE)
        self._extend = redis.register_script(_EXTEND)
        self._release = redis.register_script(_RELEASE)

    def _key_pair(self, name: str) -> list[str]:
        tagged = slot_name(name)
        return [self._keys.lease(tagged), self._keys.fence(tagged)]

    def _fence_ttl_ms(self, ttl_ms: int) -> int:
        return max(self._fence_retention_ms, ttl_ms)

    async def acquire(self, name: str, holder: str, ttl_ms: int) -> LeaseGrant | None:
        """Take the lease if it is free and return a grant with a new token; else ``None``."""
        if ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be positive, got {ttl_ms}")
        started = time.monotonic()
        reply = await self._acquire(
            keys=self._key_pair(name), args=[holder, ttl_ms, self._fence_ttl_ms(ttl_ms)]
        )
        if reply is None:
            LOCKS_FAILED.labels(self.kind).inc()
            return None
        token, seconds, micros = (_text(part) for part in reply)
        LOCKS_ACQUIRED.labels(self.kind).inc()
        acquired_at = datetime.fromtimestamp(int(seconds) + int(micros) / 1e6, UTC)
        return LeaseGrant(name, holder, int(token), acquired_at, started)

    async def extend(self, grant: LeaseGrant, ttl_ms: int) -> None:
        """Reset the lease's TTL to ``ttl_ms``; ``LeaseNotHeld`` if the grant is not current."""
        if ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be positive, got {ttl_ms}")
        extended = await self._extend(
            keys=self._key_pair(grant.name),
            args=[grant.value, grant.token, ttl_ms, self._fence_ttl_ms(ttl_ms)],
        )
        if not extended:
            raise LeaseNotHeld(
                f"lease '{grant.name}' is no longer held by '{grant.holder}' with token "
                f"{grant.token}: it expired or was taken over; stop work done under it"
            )

    async def release(self, grant: LeaseGrant) -> bool:
        """Free the lease if the grant is still current; ``False`` if it was already lost."""
        released = bool(
            await self._release(keys=self._key_pair(grant.name)[:1], args=[grant.value])
        )
        if released:
            LOCKS_DURATION.labels(self.kind).observe(time.monotonic() - grant.acquired_monotonic_s)
        return released

    async def is_held(self, grant: LeaseGrant) -> bool:
        """Whether the lease is still held under this grant (same holder and token)."""
        current = await self._redis.get(self._key_pair(grant.name)[0])
        return current is not None and _text(current) == grant.value

    async def current_token(self, name: str) -> int | None:
        """The last token issued for ``name``, or ``None`` when none is on record."""
        raw = await self._redis.get(self._key_pair(name)[1])
        return None if raw is None else int(_text(raw))

    async def require_current(self, name: str, token: int) -> None:
        """Raise ``StaleFencingToken`` unless ``token`` is the last one issued for ``name``."""
        current = await self.current_token(name)
        if current is None:
            raise StaleFencingToken(
                f"lease '{name}' has no fencing token on record (expired or never issued); "
                f"token {token} cannot be verified, so the side effect is refused"
            )
        if token < current:
            raise StaleFencingToken(
                f"lease '{name}' moved on to token {current}; token {token} is stale and its "
                "holder must stop"
            )
        if token > current:
            raise StaleFencingToken(
                f"lease '{name}' never issued token {token} (last is {current}); refusing it"
            )

    @asynccontextmanager
    async def hold(
        self,
        name: str,
        holder: str,
        ttl_ms: int,
        *,
        extend_every_ms: int | None = None,
        on_lost: Callable[[LeaseGrant], None] | None = None,
    ) -> AsyncIterator[HeldLease]:
        """Acquire ``name``, keep it alive while the block runs, release it on exit.

        Raises ``LeaseNotHeld`` when another holder has it. See ``keep_alive`` for the rest.
        """
        _extend_interval_s(ttl_ms, extend_every_ms)  # reject bad timings before acquiring
        grant = await self.acquire(name, holder, ttl_ms)
        if grant is None:
            raise LeaseNotHeld(f"lease '{name}' is held by another holder; try again later")
        async with self.keep_alive(
            grant, ttl_ms, extend_every_ms=extend_every_ms, on_lost=on_lost
        ) as held:
            yield held

    @asynccontextmanager
    async def keep_alive(
        self,
        grant: LeaseGrant,
        ttl_ms: int,
        *,
        extend_every_ms: int | None = None,
        on_lost: Callable[[LeaseGrant], None] | None = None,
    ) -> AsyncIterator[HeldLease]:
        """Extend an acquired lease every ``extend_every_ms`` (default ttl/3), release on exit.

        When the lease is lost (taken over, or not extended within its TTL because Redis was
        unreachable) ``held.lost`` is set and ``on_lost(grant)`` is called; the block keeps
        running, so work under the lease must check ``held.is_lost`` or rely on fencing.
        """
        every_s = _extend_interval_s(ttl_ms, extend_every_ms)
        held = HeldLease(grant, on_lost)
        extender = asyncio.create_task(
            self._extend_until_lost(held, ttl_ms, every_s), name=f"lease-extender:{grant.name}"
        )
        try:
            yield held
        finally:
            extender.cancel()
            # asyncio.wait does not raise the extender's CancelledError, and our own
            # cancellation still propagates out of it.
            await asyncio.wait({extender}, timeout=every_s)
            if extender.done() and not extender.cancelled() and extender.exception():
                log.error("lease extender failed", lease=grant.name, exc_info=extender.exception())
            await self._release_quietly(grant, timeout_s=every_s)

    async def _extend_until_lost(self, held: HeldLease, ttl_ms: int, every_s: float) -> None:
        expires_at = held.grant.acquired_monotonic_s + ttl_ms / 1000
        while True:
            await asyncio.sleep(every_s)
            attempted_at = time.monotonic()
            try:
                async with asyncio.timeout(every_s):
                    await self.extend(held.grant, ttl_ms)
            except LeaseNotHeld:
                held.mark_lost()
                return
            except (RedisError, OSError) as exc:
                # TimeoutError is an OSError. We cannot know whether the lease survived, so
                # it counts as held only until its last known expiry.
                if time.monotonic() >= expires_at:
                    log.warning("lease lost: could not extend it in time", lease=held.grant.name)
                    held.mark_lost()
                    return
                log.warning("lease extend failed; retrying", lease=held.grant.name, error=str(exc))
                continue
            expires_at = attempted_at + ttl_ms / 1000

    async def _release_quietly(self, grant: LeaseGrant, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self.release(grant)
        except (RedisError, OSError) as exc:
            # The TTL frees the lease anyway; a failed release only delays the next holder.
            log.warning("lease release failed; it will expire", lease=grant.name, error=str(exc))


class HeldLease:
    """A lease kept alive by ``Lease.keep_alive``; ``lost`` is set once it is no longer held."""

    def __init__(self, grant: LeaseGrant, on_lost: Callable[[LeaseGrant], None] | None) -> None:
        self.grant = grant
        self.lost = asyncio.Event()
        self._on_lost = on_lost

    @property
    def is_lost(self) -> bool:
        """Whether the lease was lost while the block was running."""
        return self.lost.is_set()

    def mark_lost(self) -> None:
        """Record the loss once and notify the callback."""
        if self.lost.is_set():
            return
        self.lost.set()
        if self._on_lost is not None:
            self._on_lost(self.grant)
