"""The journal a breaker keeps of pybreaker's changes, and the script that merges it in Redis.

See ``libs.breaker`` for how replicas share a circuit; this module holds the pieces that
record local changes and apply them to the shared record atomically.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pybreaker
from pybreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN

STATE_CODES = {STATE_CLOSED: 0, STATE_HALF_OPEN: 1, STATE_OPEN: 2}

# Journal ops, one string each: f/F count/reset a failure, s/S count/reset a success in
# half-open; o:<opened_at_ms> opens (unless already open); h:<opened_at_ms> half-opens only the
# opening that was seen; c:<from> closes only from the state the replica saw;
# T:<token>:<timeout_ms> claims the half-open circuit's one trial call unless another trial is
# under way; t:<token> gives that claim back.
# The trial's deadline is kept in Redis's clock, so replicas' clocks cannot disagree on it, and
# a claim whose holder died lapses at its deadline instead of keeping the circuit half-open.
# Every transition ends the trial: the next half-open gets a fresh one.
# The version only grows, even if the hash is lost (same max(v + 1, TIME) rule as lease fences),
# so a reply that arrives after a newer one is recognised and ignored.
SYNC_SCRIPT = """
local key = KEYS[1]
local fail_max = tonumber(ARGV[1])
local success_threshold = tonumber(ARGV[2])
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local now_ms = math.floor(now_us / 1000)
local changed = redis.call('EXISTS', key) == 0
local state = redis.call('HGET', key, 'state') or 'closed'
local function set_state(new, opened_at)
  state = new
  redis.call('HSET', key, 'state', new, 'successes', 0)
  redis.call('HDEL', key, 'trial', 'trial_until')
  if new == 'open' then redis.call('HSET', key, 'opened_at', opened_at) end
  if new == 'closed' then redis.call('HSET', key, 'failures', 0) end
end
local function trial_under_way()
  local holder = redis.call('HGET', key, 'trial')
  local until_ms = tonumber(redis.call('HGET', key, 'trial_until') or '0')
  if holder and until_ms > now_ms then return holder, until_ms - now_ms end
  return false, 0
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
  elseif op == 'T' then
    local token, timeout_ms = string.match(arg, '^(.+):(%d+)$')
    if state == 'half-open' and not trial_under_way() then
      redis.call('HSET', key, 'trial', token,
        'trial_until', string.format('%.0f', now_ms + tonumber(timeout_ms)))
    end
  elseif op == 't' then
    if redis.call('HGET', key, 'trial') == arg then
      redis.call('HDEL', key, 'trial', 'trial_until')
    end
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
  local version = tonumber(redis.call('HGET', key, 'version') or '0') or 0
  redis.call('HSET', key, 'state', state,
    'version', string.format('%.0f', math.max(version + 1, now_us)))
end
local reply = redis.call('HMGET', key, 'state', 'failures', 'successes', 'opened_at', 'version')
local holder, ms_left = trial_under_way()
reply[6] = holder
reply[7] = ms_left
return reply
"""


def now_ms() -> int:
    # Wall clock, not monotonic: opened_at is compared by every replica.
    return int(time.time() * 1000)


def _int(raw: bytes | str | int | None) -> int | None:
    return None if raw is None or raw == b"" or raw == "" else int(raw)


def _text(raw: bytes | str | int | None) -> str | None:
    if raw is None or isinstance(raw, int):
        return None
    return raw.decode() if isinstance(raw, bytes) else raw


@dataclass(frozen=True, slots=True)
class SharedRecord:
    state: str
    failures: int
    successes: int
    opened_at_ms: int | None
    version: int
    trial: str | None = None
    """The token of the trial call under way, if any (only ever in half-open)."""
    trial_ms_left: int = 0
    """How long that trial may still run before another one is admitted."""

    @classmethod
    def parse(cls, reply: list[bytes | str | int | None]) -> SharedRecord:
        state, failures, successes, opened_at, version, trial, trial_ms_left = reply
        text = _text(state) or STATE_CLOSED
        return cls(
            state=text if text in STATE_CODES else STATE_CLOSED,
            failures=_int(failures) or 0,
            successes=_int(successes) or 0,
            opened_at_ms=_int(opened_at),
            version=_int(version) or 0,
            trial=_text(trial),
            trial_ms_left=_int(trial_ms_left) or 0,
        )


class JournaledStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker's storage in memory, noting each change so the adapter can push it to Redis."""

    def __init__(self) -> None:
        super().__init__("shared")
        self._state = STATE_CLOSED
        self._failures = 0
        self._successes = 0
        self.opened_at_ms: int | None = None
        self.trial: str | None = None
        """The token of the trial call under way, as last known (ours or another replica's)."""
        self._trial_until = 0.0  # monotonic
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
                self._note(f"o:{self.opened_at_ms or now_ms()}")
            elif state == STATE_HALF_OPEN:
                self._note(f"h:{self.opened_at_ms or ''}")
            else:
                self._note(f"c:{self._state}")
            self.trial = None  # as in the script: a transition ends the trial
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
    def trial_s_left(self) -> float:
        """How long the known trial may still run; 0 when none is under way."""
        if self.trial is None:
            return 0.0
        return max(0.0, self._trial_until - time.monotonic())

    def claim_trial(self, token: str, timeout_ms: int) -> bool:
        """Take the trial slot unless a trial is known to be under way; note the claim."""
        if self.trial_s_left > 0:
            return False
        self.trial = token
        self._trial_until = time.monotonic() + timeout_ms / 1000
        self._note(f"T:{token}:{timeout_ms}")
        return True

    def end_trial(self, token: str, *, shared: bool) -> None:
        """Give the trial slot back; ``shared``: Redis granted it, so tell Redis too."""
        if self.trial == token:
            self.trial = None
        if shared:
            self._note(f"t:{token}")

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

    def load(self, record: SharedRecord) -> None:
        """Take the shared record's values."""
        self._state = record.state
        self._failures = record.failures
        self._successes = record.successes
        self.opened_at_ms = record.opened_at_ms
        self.trial = record.trial
        self._trial_until = time.monotonic() + record.trial_ms_left / 1000
