"""Pacing the messages to one recipient within what the provider allows, across replicas.

Providers limit how fast one business number may write to one person (WhatsApp's pair rate
limit, Telegram's one message per second per chat). Every worker and replica reserves its
messages' slots in one Redis key per conversation, so two replies racing to one recipient
still leave spaced out, and different recipients never wait for each other.

The schedule is a GCRA ("generic cell rate algorithm"): the key holds the theoretical arrival
time (TAT) of the recipient's next message; a message may leave ``(burst - 1) * interval``
before it, and each message pushes it ``interval`` further. A reservation takes the slots of
every message a part becomes at once, in one Lua script, so the chunks of a split text are
never separated by another reply, and a part is either scheduled whole or not at all: when
its first slot is further than ``max_wait_s`` away, nothing is reserved and the send fails
with ``RateLimited`` carrying the delay, for delivery to try again then (never an unbounded
sleep in a worker).

Why not the ``limits`` library (already used for webhook rate limits)? It answers "may I
now?" for one hit; pacing needs "when may each of these k messages go?" and a reservation of
those future slots, atomically, which its strategies do not offer (a moving window of 1 per
6 s can never take a cost of 3, and a refused hit says nothing about the slot after a
concurrent worker's). The algorithm is a dozen lines of Lua.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from channels.base_config import RecipientPace
from channels.sending_errors import RateLimited
from events.partitions import partition_for
from libs.keys import KeySpace

MAX_MESSAGES_PER_RESERVATION = 100

# Meta's pair rate limit: one message every 6 seconds from a business number to one WhatsApp
# user (error 131056 past it); bursts (up to 45 in 6 s) are borrowed from what follows, so a
# few chunks of one reply may leave together. WhatsApp through Twilio is held to it as well.
WHATSAPP_PAIR_RATE_LIMIT = RecipientPace(interval_ms=6_000, burst=5)

# KEYS[1]: the recipient's pace key. ARGV: interval_ms, burst, count, max_wait_ms, now_ms
# ('' for the server's clock, one clock for every replica). Answers {1, delay_ms...} with the
# delay of each message from now, or {0, delay_ms} when the first is too far to wait for.
_RESERVE = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local tolerance = (burst - 1) * interval
local first = math.max(0, tat - tolerance - now)
if first > max_wait then
  return {0, first}
end
local answer = {1}
for i = 0, count - 1 do
  answer[#answer + 1] = math.max(0, tat + i * interval - tolerance - now)
end
local next_tat = tat + count * interval
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now + 1000)
return answer
"""


class PaceClock(Protocol):
    """Time as the pacer sees it; tests pass a clock they move by hand."""

    def now_ms(self) -> int | None:
        """Wall time for the reservation; ``None`` lets Redis's clock decide (production)."""
        ...

    def monotonic(self) -> float:
        """Seconds, for waiting out the delays of a reservation."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """Redis's clock for reservations, the event loop's for waiting."""

    def now_ms(self) -> int | None:
        """Let the script read Redis's clock."""
        return None

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class PaceSchedule:
    """When each message of one reservation may leave, counted from ``start``."""

    delays_s: tuple[float, ...]
    start: float
    clock: PaceClock

    async def wait(self, index: int) -> None:
        """Wait until message ``index`` may leave (at once when its slot has come)."""
        remaining = self.start + self.delays_s[index] - self.clock.monotonic()
        if remaining > 0:
            await self.clock.sleep(remaining)


class RecipientPacer(Protocol):
    """Reserves slots for messages to one recipient of a channel."""

    async def reserve(self, recipient: str, count: int) -> PaceSchedule:
        """Reserve ``count`` consecutive messages; ``RateLimited`` when too far away."""
        ...


class Unpaced:
    """No pacing: every message may leave at once (channels without a per-recipient limit)."""

    def __init__(self, clock: PaceClock | None = None) -> None:
        self._clock = clock or SystemClock()

    async def reserve(self, recipient: str, count: int) -> PaceSchedule:
        """Slots now, for every message."""
        return PaceSchedule((0.0,) * count, self._clock.monotonic(), self._clock)


class RedisRecipientPacer:
    """Paces one channel's messages per recipient in Redis, for every replica at once.

    The key is the conversation's (``<channel id>:<recipient>``, as the ingress names it and
    as delivery addresses it), under its partition's hash tag (``libs.keys``).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        *,
        tenant_id: str,
        channel_id: str,
        pace: RecipientPace,
        partitions: int,
        clock: PaceClock | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self._redis = redis
        self._keys = keys
        self._tenant_id = tenant_id
        self._channel_id = channel_id
        self._pace = pace
        self._partitions = partitions
        self._clock = clock or SystemClock()
        self._script = redis.register_script(_RESERVE)

    def key(self, recipient: str) -> str:
        """The Redis key holding ``recipient``'s next slot."""
        conversation_id = f"{self._channel_id}:{recipient}"
        partition = partition_for(self._tenant_id, conversation_id, self._partitions)
        return self._keys.pace(partition, self._tenant_id, conversation_id)

    async def reserve(self, recipient: str, count: int) -> PaceSchedule:
        """Reserve ``count`` consecutive slots for ``recipient``; ``RateLimited`` (with the
        delay in ``retry_after_s``) when the first is more than ``max_wait_s`` away."""
        if not 1 <= count <= MAX_MESSAGES_PER_RESERVATION:
            raise ValueError(
                f"a reservation takes 1 to {MAX_MESSAGES_PER_RESERVATION} messages, got {count}"
            )
        now = self._clock.now_ms()
        answer: Sequence[int] = await self._script(
            keys=[self.key(recipient)],
            args=[
                self._pace.interval_ms,
                self._pace.burst,
                count,
                int(self._pace.max_wait_s * 1000),
                "" if now is None else now,
            ],
        )
        start = self._clock.monotonic()
        if int(answer[0]) == 0:
            delay_s = int(answer[1]) / 1000
            raise RateLimited(
                f"channel '{self._channel_id}' paces its messages to one recipient "
                f"(one per {self._pace.interval_ms} ms, bursts of {self._pace.burst}); "
                f"the next slot is {delay_s:.1f}s away, over the {self._pace.max_wait_s}s "
                "a send waits",
                retry_after_s=delay_s,
            )
        return PaceSchedule(tuple(int(d) / 1000 for d in answer[1:]), start, self._clock)
