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

Half-open admits one trial call across all replicas: the script grants the trial to one claim
and refuses the others (``CircuitOpen``) until the trial reports — success closes the circuit,
failure opens it again for a new ``reset_timeout_s``. The claim lapses after
``trial_timeout_s``, so a replica that dies mid-trial cannot keep the circuit half-open: the
next caller after that deadline becomes the trial.

When Redis is unreachable the breaker keeps working on its local state (one trial per replica
then), logs once, and tries Redis again after ``redis_retry_ms``; the shared record wins again
once it answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import pybreaker
import redis.asyncio as aioredis
import structlog
from pybreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN
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
    later calls raise ``CircuitOpen`` without running until ``reset_timeout_s`` has passed; then
    one trial call runs while the others are refused, for at most ``trial_timeout_s`` (default:
    ``reset_timeout_s``) before another caller may become the trial.
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
        trial_timeout_s: float | None = None,
        sync_interval_ms: int = 250,
        redis_timeout_ms: int = 250,
        redis_retry_ms: int = 1000,
    ) -> None:
        if fail_max < 1 or success_threshold < 1:
            raise ValueError(f"breaker '{name}': fail_max and success_threshold must be >= 1")
        if reset_timeout_s <= 0 or (trial_timeout_s is not None and trial_timeout_s <= 0):
            raise ValueError(f"breaker '{name}': reset_timeout_s and trial_timeout_s must be > 0")
        if min(sync_interval_ms, redis_timeout_ms, redis_retry_ms) < 0 or redis_timeout_ms == 0:
            raise ValueError(
                f"breaker '{name}': sync_interval_ms and redis_retry_ms must be >= 0 and "
                "redis_timeout_ms > 0"
            )
        self.name = name
        self.reset_timeout_s = reset_timeout_s
        self._trial_timeout_ms = max(1, round((trial_timeout_s or reset_timeout_s) * 1000))
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
        self._in_flight: asyncio.Event | None = None
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
        trial = await self._admit()
        try:
            yield
        # CancelledError is not an Exception: a cancelled call is neither success nor failure.
        except Exception as exc:
            await self._record(exc, trial)
            raise
        except BaseException:
            if trial is not None:
                # Free the slot now rather than at the trial's deadline.
                self._storage.end_trial(trial, shared=True)
                await self._sync(force=False)
            raise
        await self._record(None, trial)

    async def sync(self) -> None:
        """Push pending changes and adopt the shared state now, whatever the interval."""
        await self._sync(force=True)

    async def _admit(self) -> str | None:
        """Let the call through or raise ``CircuitOpen``; return its token if it is the trial."""
        await self._sync(force=False)
        state = self._breaker.state.name
        if state == STATE_CLOSED:
            return None
        if state == STATE_OPEN:
            if not self._timeout_elapsed():
                raise self._open_error()
            self._breaker.half_open()
        return await self._claim_trial()

    async def _claim_trial(self) -> str | None:
        token = uuid.uuid4().hex
        # Callers of this replica are refused here, without a round trip, while its view says a
        # trial is under way; that view is refreshed with the state, every sync interval.
        if not self._storage.claim_trial(token, self._trial_timeout_ms):
            raise self._trial_error()
        # Redis decides between replicas (a replica that re-opened the circuit meanwhile wins
        # too); when it cannot be asked, this replica's own claim stands.
        record = await self._sync(force=True)
        if record is None or record.trial == token:
            return token
        self._storage.end_trial(token, shared=False)
        if record.state == STATE_CLOSED:
            return None  # another trial closed the circuit meanwhile: an ordinary call
        if record.state == STATE_HALF_OPEN:
            raise self._trial_error()
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

    def _trial_error(self) -> CircuitOpen:
        return CircuitOpen(
            f"circuit breaker '{self.name}' is half-open and its one trial call is under way; "
            f"calls are refused until it succeeds (it has {self._storage.trial_s_left:.1f}s "
            "left to report)"
        )

    async def _record(self, exc: Exception | None, trial: str | None) -> None:
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
        if trial is not None:
            # Pushed in the same script call as the outcome: no one claims between the two.
            self._storage.end_trial(trial, shared=True)
        await self._sync(force=False)

    async def _sync(self, *, force: bool) -> SharedRecord | None:
        """Push the journal, adopt the shared record and return it (None: Redis was not asked)."""
        now = time.monotonic()
        if now < self._redis_back_at:
            self._storage.take_ops()  # local-only until Redis is tried again
            return None
        if not force and not self._storage.has_ops:
            if self._in_flight is not None:
                # A round trip is under way: wait for its fresher view rather than admit calls
                # on an old one (a replica idle for minutes would still think it closed).
                await self._in_flight.wait()
                return None
            if now < self._next_sync_at:
                return None
        # Claimed before the round trip so that concurrent callers do not all refresh.
        self._next_sync_at = now + self._sync_interval_s
        done = self._in_flight = asyncio.Event()
        try:
            return await self._round_trip(self._storage.take_ops())
        finally:
            done.set()
            if self._in_flight is done:
                self._in_flight = None

    async def _round_trip(self, ops: list[str]) -> SharedRecord | None:
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
            return None
        if self._redis_down:
            self._redis_down = False
            log.info("circuit breaker reached Redis again", breaker=self.name)
        record = SharedRecord.parse(reply)
        self._adopt(record)
        return record

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
