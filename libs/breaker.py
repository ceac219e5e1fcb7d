"""Circuit breakers for asyncio whose state every replica shares through Redis.

pybreaker runs the state machine (closed → open → half-open, ``fail_max``, ``reset_timeout``,
``success_threshold``, excluded exceptions, listeners) on an in-memory storage. That storage
notes each change pybreaker makes (a failure counted, a counter reset, a transition) in a
journal; after a call the journal is pushed to one Redis hash by a Lua script, which applies the
changes atomically and returns the shared record, and the local storage adopts it. Before a call
the shared record is read again when the last sync is older than ``sync_interval_ms``, so a
healthy circuit costs one round trip per interval, not one per call.

Merging is what keeps replicas honest: counters travel as increments; a transition is applied
only from the state it was decided in (a replica with a stale view cannot close a circuit that
another one just re-opened, nor half-open one that was re-opened since it looked); and the
script re-checks ``fail_max`` / ``success_threshold`` against the shared counters, so failures
counted by several replicas at once still trip the circuit.

When Redis is unreachable the breaker keeps working on its local state, logs once, and tries
Redis again after ``redis_retry_ms``; the shared record wins again once it answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import pybreaker
import redis.asyncio as aioredis
import structlog
from pybreaker import STATE_CLOSED, STATE_OPEN
from redis.exceptions import RedisError

from libs.breaker_journal import STATE_CODES, SYNC_SCRIPT, JournaledStorage, SharedRecord, now_ms
from libs.errors import CircuitOpen
from libs.keys import KeySpace
from libs.observability.metrics import CIRCUIT_BREAKER_FAILURES, CIRCUIT_BREAKER_STATE

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class _Telemetry(pybreaker.CircuitBreakerListener):
    """Keeps the breaker's metrics and logs its transitions."""

    def __init__(self, name: str) -> None:
        self._name = name

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        """Publish the new state."""
        CIRCUIT_BREAKER_STATE.labels(self._name).set(STATE_CODES[new_state.name])
        old = old_state.name if old_state is not None else None
        log.info("circuit breaker changed state", breaker=self._name, old=old, new=new_state.name)

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        """Count a failure seen by this replica."""
        CIRCUIT_BREAKER_FAILURES.labels(self._name).inc()


class SharedCircuitBreaker:
    """A circuit breaker guarding async calls, its state shared by every replica via Redis.

    ``exclude`` lists exception types (or predicates) that are not the dependency's fault: they
    neither count as failures nor open the circuit (pybreaker counts them as successes). A
    cancelled call counts as neither. The call that trips the circuit raises its own error;
    later calls raise ``CircuitOpen`` without running until ``reset_timeout_s`` has passed.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        name: str,
        fail_max: int,
        reset_timeout_s: float,
        success_threshold: int = 1,
        exclude: Iterable[type[BaseException] | Callable[[Any], bool]] = (),
        *,
        listeners: Sequence[pybreaker.CircuitBreakerListener] = (),
        sync_interval_ms: int = 250,
        redis_timeout_ms: int = 250,
        redis_retry_ms: int = 1000,
    ) -> None:
        if fail_max < 1 or success_threshold < 1:
            raise ValueError(f"breaker '{name}': fail_max and success_threshold must be >= 1")
        if reset_timeout_s <= 0:
            raise ValueError(f"breaker '{name}': reset_timeout_s must be positive")
        if min(sync_interval_ms, redis_timeout_ms, redis_retry_ms) < 0 or redis_timeout_ms == 0:
            raise ValueError(
                f"breaker '{name}': sync_interval_ms and redis_retry_ms must be >= 0 and "
                "redis_timeout_ms > 0"
            )
        self.name = name
        self.reset_timeout_s = reset_timeout_s
        self._key = keys.breaker(name)
        self._storage = JournaledStorage()
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout_s,
            success_threshold=success_threshold,
            exclude=list(exclude),
            listeners=[_Telemetry(name), *listeners],
            state_storage=self._storage,
            name=name,
            # The failing call surfaces its own error; CircuitOpen is for refused calls.
            throw_new_error_on_trip=False,
        )
        self._script = redis.register_script(SYNC_SCRIPT)
        self._sync_interval_s = sync_interval_ms / 1000
        self._redis_timeout_s = redis_timeout_ms / 1000
        self._redis_retry_s = redis_retry_ms / 1000
        self._next_sync_at = 0.0
        self._redis_back_at = 0.0
        self._redis_down = False
        self._version = -1
        CIRCUIT_BREAKER_STATE.labels(name).set(STATE_CODES[STATE_CLOSED])

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``, as last known by this replica."""
        return self._storage.state

    @property
    def fail_counter(self) -> int:
        """Consecutive failures, as last known by this replica."""
        return self._storage.counter

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` under the breaker; raise ``CircuitOpen`` when refused."""
        async with self.guard():
            return await fn(*args, **kwargs)

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Run the block under the breaker; raise ``CircuitOpen`` before it when refused."""
        await self._admit()
        try:
            yield
        # CancelledError is not an Exception: a cancelled call is neither success nor failure.
        except Exception as exc:
            await self._record(exc)
            raise
        await self._record(None)

    async def sync(self) -> None:
        """Push pending changes and adopt the shared state now, whatever the interval."""
        await self._sync(force=True)

    async def _admit(self) -> None:
        await self._sync(force=False)
        if self._breaker.state.name != STATE_OPEN:
            return
        if not self._timeout_elapsed():
            raise self._open_error()
        self._breaker.half_open()
        # Publish the trial at once; a replica that re-opened it meanwhile wins.
        await self._sync(force=True)
        if self._breaker.state.name == STATE_OPEN:
            raise self._open_error()

    def _timeout_elapsed(self) -> bool:
        opened_at_ms = self._storage.opened_at_ms
        return opened_at_ms is None or now_ms() >= opened_at_ms + self.reset_timeout_s * 1000

    def _open_error(self) -> CircuitOpen:
        opened_at_ms = self._storage.opened_at_ms or now_ms()
        retry_at_s = opened_at_ms / 1000 + self.reset_timeout_s
        when = datetime.fromtimestamp(retry_at_s, UTC).isoformat(timespec="milliseconds")
        wait_s = max(0.0, retry_at_s - time.time())
        return CircuitOpen(
            f"circuit breaker '{self.name}' is open after repeated failures; calls are refused "
            f"until {when} (in {wait_s:.1f}s), when one trial call will be let through"
        )

    async def _record(self, exc: Exception | None) -> None:
        state = self._breaker.state
        if exc is None:
            state._handle_success()
        else:
            traceback = exc.__traceback__
            try:
                state._handle_error(exc, reraise=False)
            except Exception as raised:
                # pybreaker re-raises the call's own error when it trips the circuit.
                if raised is not exc:
                    raise
            exc.__traceback__ = traceback
        await self._sync(force=False)

    async def _sync(self, *, force: bool) -> None:
        now = time.monotonic()
        if now < self._redis_back_at:
            self._storage.take_ops()  # local-only until Redis is tried again
            return
        if not force and now < self._next_sync_at and not self._storage.has_ops:
            return
        # Claimed before the round trip so that concurrent callers do not all refresh.
        self._next_sync_at = now + self._sync_interval_s
        ops = self._storage.take_ops()
        args: list[str | int] = [
            self._breaker.fail_max,
            self._breaker.success_threshold,
            now_ms(),
            *ops,
        ]
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                reply = await self._script(keys=[self._key], args=args)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            self._redis_back_at = time.monotonic() + self._redis_retry_s
            if not self._redis_down:
                self._redis_down = True
                log.warning(
                    "circuit breaker cannot reach Redis; using this replica's state",
                    breaker=self.name,
                    error=repr(exc),
                )
            return
        if self._redis_down:
            self._redis_down = False
            log.info("circuit breaker reached Redis again", breaker=self.name)
        self._adopt(SharedRecord.parse(reply))

    def _adopt(self, record: SharedRecord) -> None:
        if record.version < self._version:
            return  # an older snapshot answered after a newer one
        self._version = record.version
        with self._storage.adopting():
            self._storage.load(record)
            # Reading pybreaker's state swaps its state object and tells listeners when the
            # storage changed under it; the new state's constructor resets counters, so the
            # shared values are loaded again afterwards.
            adopted = self._breaker.state
            self._storage.load(record)
        CIRCUIT_BREAKER_STATE.labels(self.name).set(STATE_CODES[adopted.name])
