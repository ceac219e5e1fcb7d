"""The circuit breaker an outbound channel sends under, as a port.

Adapters only need ``guard()``; production passes a ``SharedCircuitBreaker`` per channel (one
state for every replica), tests that are not about breaking pass ``NoBreaker``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import redis.asyncio as aioredis

from libs.breaker import SharedCircuitBreaker
from libs.keys import KeySpace


class ChannelBreaker(Protocol):
    """Runs a block under a circuit breaker; raises ``libs.errors.CircuitOpen`` when refused.

    An exception escaping the block counts as a failure of the dependency, a normal exit as a
    success; adapters let only availability failures escape it.
    """

    def guard(self) -> AbstractAsyncContextManager[None]:
        """Admit the block, or raise ``CircuitOpen`` before it runs."""
        ...


class NoBreaker:
    """A breaker that is always closed, for channels (or tests) that go without one."""

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Always admit the block."""
        yield


def channel_breaker(
    redis: aioredis.Redis,
    keys: KeySpace,
    channel_id: str,
    *,
    fail_max: int = 5,
    reset_timeout_s: float = 30.0,
) -> SharedCircuitBreaker:
    """The shared breaker of one outbound channel, named ``channel:{channel_id}``."""
    return SharedCircuitBreaker(
        redis, keys, f"channel:{channel_id}", fail_max=fail_max, reset_timeout_s=reset_timeout_s
    )
