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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import pybreaker
import redis.asyncio as aioredis
import structlog
from pybreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN
from redis.exceptions import RedisError

from libs.errors import CircuitOpen
from libs.keys import KeySpace
from libs.observability.metrics import CIRCUIT_BREAKER_FAILURES, CIRCUIT_BREAKER_STATE

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

STATE_CODES = {STATE_CLOSED: 0, STATE_HALF_OPEN: 1, STATE_OPEN: 2}

# Journal ops, one string each: f/F count/reset a failure, s/S count/reset a success in
# half-open; o:<opened_at_ms> opens (unless already open); h:<opened_at_ms> half-opens only the
# opening that was seen; c:<from> closes only from the state the replica saw.
# The version only grows, even if the hash is lost (same max(v + 1, TIME) rule as lease fences),
# so a reply that arrives after a newer one is recognised and ignored.
_SYNC = """
local key = KEYS[1]
local fail_max = tonumber(ARGV[1])
local success_threshold = tonumber(ARGV[2])
local changed = redis.call('EXISTS', key) == 0
local state = redis.call('HGET', key, 'state') or 'closed'
local function set_state(new, opened_at)
  state = new
  redis.call('HSET', key, 'state', new, 'successes', 0)
  if new == 'open' then redis.call('HSET', key, 'opened_at', opened_at) end
  if new == 'closed' then redis.call('HSET', key, 'failures', 0) end
end
for i = 4, #ARGV do
  local op, arg = string.sub(ARGV[i], 1, 1), string.sub(ARGV[i], 3)
  if op == 'f' then redis.call('HINCRBY', key, 'failures', 1)
  elseif op == 'F' then redis.call('HSET', key, 'failures', 0)
  elseif op == 's' then redis.call('HINCRBY', key, 'successes', 1)
  elseif op == 'S' then redis.call('HSET', key, 'successes', 0)
  elseif op == 'o' then
    if state ~= 'open' then set_state('open', arg) end
  elseif op == 'h' then
    if state == 'open' and (redis.call('HGET', key, 'opened_at') or '') == arg then
      set_state('half-open')
    end
  elseif op == 'c' then
    if state == arg then set_state('closed') end
  end
  changed = true
end
local failures = tonumber(redis.call('HGET', key, 'failures') or '0')
local successes = tonumber(redis.call('HGET', key, 'successes') or '0')
if state == 'closed' and failures >= fail_max then
  set_state('open', ARGV[3])
  changed = true
elseif state == 'half-open' and successes >= success_threshold then
  set_state('closed')
  changed = true
end
if changed then
  local now = redis.call('TIME')
  local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local version = tonumber(redis.call('HGET', key, 'version') or '0') or 0
  redis.call('HSET', key, 'state', state,
    'version', string.format('%.0f', math.max(version + 1, now_us)))
end
return redis.call('HMGET', key, 'state', 'failures', 'successes', 'opened_at', 'version')
"""


def _now_ms() -> int:
    # Wall clock, not monotonic: opened_at is compared by every replica.
    return int(time.time() * 1000)


def _int(raw: bytes | str | None) -> int | None:
    return None if raw is None or raw == b"" or raw == "" else int(raw)


@dataclass(frozen=True, slots=True)
class _SharedRecord:
    state: str
    failures: int
    successes: int
    opened_at_ms: int | None
    version: int

    @classmethod
    def parse(cls, reply: list[bytes | str | None]) -> _SharedRecord:
        state, failures, successes, opened_at, version = reply
        text = state.decode() if isinstance(state, bytes) else (state or STATE_CLOSED)
        return cls(
            state=text if text in STATE_CODES else STATE_CLOSED,
            failures=_int(failures) or 0,
            successes=_int(successes) or 0,
            opened_at_ms=_int(opened_at),
            version=_int(version) or 0,
        )


class _JournaledStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker's storage in memory, noting each change so the adapter can push it to Redis."""

    def __init__(self) -> None:
        super().__init__("shared")
        self._state = STATE_CLOSED
        self._failures = 0
        self._successes = 0
        self.opened_at_ms: int | None = None
        self._ops: list[str] = []
        self._adopting = False

    def _note(self, op: str) -> None:
        if not self._adopting:
            self._ops.append(op)

    @property
    def state(self) -> str:
        """Current state name."""
        return self._state

    @state.setter
    def state(self, state: str) -> None:
        if state != self._state:
            if state == STATE_OPEN:
                self._note(f"o:{self.opened_at_ms or _now_ms()}")
            elif state == STATE_HALF_OPEN:
                self._note(f"h:{self.opened_at_ms or ''}")
            else:
                self._note(f"c:{self._state}")
        self._state = state

    def increment_counter(self) -> None:
        """Count a failure."""
        self._failures += 1
        self._note("f")

    def reset_counter(self) -> None:
        """Reset the failure count (elided when already zero: no round trip for healthy calls)."""
        if self._failures:
            self._note("F")
        self._failures = 0

    def increment_success_counter(self) -> None:
        """Count a half-open success."""
        self._successes += 1
        self._note("s")

    def reset_success_counter(self) -> None:
        """Reset the half-open success count (elided when already zero)."""
        if self._successes:
            self._note("S")
        self._successes = 0

    @property
    def counter(self) -> int:
        """Consecutive failures."""
        return self._failures

    @property
    def success_counter(self) -> int:
        """Consecutive half-open successes."""
        return self._successes

    @property
    def opened_at(self) -> datetime | None:
        """When the circuit last opened."""
        if self.opened_at_ms is None:
            return None
        return datetime.fromtimestamp(self.opened_at_ms / 1000, UTC)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self.opened_at_ms = int(value.timestamp() * 1000)

    @property
    def has_ops(self) -> bool:
        """Whether changes are waiting to be pushed."""
        return bool(self._ops)

    def take_ops(self) -> list[str]:
        """Hand over the journal and start a new one."""
        ops, self._ops = self._ops, []
        return ops

    @contextmanager
    def adopting(self) -> Iterator[None]:
        """Changes made inside came from Redis: they are applied but not journaled."""
        self._adopting = True
        try:
            yield
        finally:
            self._adopting = False

    def load(self, record: _SharedRecord) -> None:
        """Take the shared record's values."""
        self._state = record.state
        self._failures = record.failures
        self._successes = record.successes
        self.opened_at_ms = record.opened_at_ms


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
        self._storage = _JournaledStorage()
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
        self._script = redis.register_script(_SYNC)
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
        return opened_at_ms is None or _now_ms() >= opened_at_ms + self.reset_timeout_s * 1000

    def _open_error(self) -> CircuitOpen:
        opened_at_ms = self._storage.opened_at_ms or _now_ms()
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
            _now_ms(),
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
        self._adopt(_SharedRecord.parse(reply))

    def _adopt(self, record: _SharedRecord) -> None:
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
