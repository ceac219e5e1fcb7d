"""Typing indicator (and read receipt) while a turn runs.

When a turn opens (``routing.handoff.requested``) the contact is shown that an answer is being
written, through the channel's ``TypingIndicator`` (WhatsApp marks the message read in the
same call); providers without one are skipped. Providers show it only for a while (WhatsApp
~25 s, Telegram ~5 s), so an open turn is refreshed until it closes:

- the refresh is kept in Redis, not in a task per turn: a per-partition sorted set
  (``typing-due:{pN}``) holds each turn to refresh, scored by when; a background loop of the
  presence worker claims what is due (one script: taken once, whichever replica sweeps),
  refreshes it and schedules the next, at 80 % of how long the provider shows it;
- before every call the turn must still be the conversation's open turn, with its token
  (``Mailbox.current``): a turn that was answered, superseded or handed to a human is never
  refreshed, and its entry is dropped; a turn older than the turn deadline is dropped too
  (a resumed turn is published again, and starts over).

A typing call that fails is logged and counted (``typing_indicators_total``), never retried
and never dead-lettered: it is a hint, and it never holds up a reply (its own worker, no
breaker shared with replies, one short try).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from channels.provider import TypingIndicator
from channels.sending_errors import SendError
from dispatcher.mailbox import Mailbox
from events.envelope import Envelope
from events.types.routing import RoutingHandoffRequested
from libs.keys import KeySpace
from libs.observability.metrics import TYPING_INDICATORS

_log = structlog.get_logger("atende.delivery")

REFRESH_SHARE = 0.8

# Take up to ARGV[2] entries due by ARGV[1] (ms) and remove them: each is refreshed once.
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do redis.call('ZREM', KEYS[1], member) end
return due
"""


class TypingIndicators(Protocol):
    """The typing indicator of a tenant's channel, or ``None`` when it has none."""

    async def __call__(self, tenant_id: str, channel_id: str) -> TypingIndicator | None:
        """Look it up."""
        ...


@dataclass(frozen=True, slots=True)
class TypingTurn:
    """An open turn whose indicator is kept up (one sorted-set member)."""

    tenant_id: str
    conversation_id: str
    turn_id: str
    token: int
    channel_id: str
    message_id: str | None
    every_ms: int
    until_ms: int

    def member(self) -> str:
        """The sorted-set member (compact JSON)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_member(cls, raw: bytes | str) -> TypingTurn:
        """Parse a member written by ``member``."""
        return cls(**json.loads(raw))


Outcome = Literal["sent", "failed", "skipped", "no_indicator"]


class TypingPresence:
    """Shows and refreshes typing indicators of open turns."""

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        keys: KeySpace,
        mailbox: Mailbox,
        indicators: TypingIndicators,
        partitions: int,
        max_typing_ms: int,
        sweep_interval_s: float = 1.0,
        batch: int = 100,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._mailbox = mailbox
        self._indicators = indicators
        self._partitions = partitions
        self._max_typing_ms = max_typing_ms
        self._sweep_interval_s = sweep_interval_s
        self._batch = batch
        self._claim_due = redis.register_script(_CLAIM_DUE)

    async def turn_opened(self, envelope: Envelope[RoutingHandoffRequested]) -> Outcome:
        """Show the indicator for a turn that opened, and schedule its refresh."""
        turn = envelope.payload
        indicator = await self._indicators(envelope.tenant_id, turn.channel_id)
        if indicator is None:
            return "no_indicator"
        now = await self._now_ms()
        typing = TypingTurn(
            tenant_id=envelope.tenant_id,
            conversation_id=envelope.conversation_id,
            turn_id=turn.turn_id,
            token=turn.fencing_token,
            channel_id=turn.channel_id,
            message_id=turn.messages[-1].provider_message_id if turn.messages else None,
            every_ms=max(1, int(indicator.lasts_s * 1000 * REFRESH_SHARE)),
            until_ms=now + self._max_typing_ms,
        )
        return await self._show(typing, indicator, now)

    async def refresh_due(self, partition: int) -> int:
        """Refresh the due turns of ``partition`` (at most one batch); return how many."""
        now = await self._now_ms()
        key = self._keys.typing_due(partition)
        claimed = await self._claim_due(keys=[key], args=[now, self._batch])
        refreshed = 0
        for raw in claimed:
            typing = TypingTurn.from_member(raw)
            if now > typing.until_ms:
                continue  # past the turn deadline: a resumed turn starts over
            indicator = await self._indicators(typing.tenant_id, typing.channel_id)
            if indicator is not None and await self._show(typing, indicator, now) == "sent":
                refreshed += 1
        return refreshed

    async def run(self, stopping: asyncio.Event) -> None:
        """Refresh due turns every ``sweep_interval_s`` until ``stopping`` is set."""
        while not stopping.is_set():
            try:
                for partition in range(self._partitions):
                    await self.refresh_due(partition)
            except (RedisError, OSError) as exc:
                _log.warning("typing refresh failed; will retry", error=str(exc))
            except Exception:  # noqa: BLE001 - the loop boundary: a dead loop stops all refreshes
                _log.exception("typing refresh failed unexpectedly; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._sweep_interval_s)

    async def _show(self, typing: TypingTurn, indicator: TypingIndicator, now: int) -> Outcome:
        conversation = self._mailbox.conversation(typing.tenant_id, typing.conversation_id)
        current = await self._mailbox.current(conversation)
        if current is None or (current.turn_id, current.token) != (typing.turn_id, typing.token):
            # Answered, superseded, resumed under a new token, or handed to a human.
            TYPING_INDICATORS.labels(typing.channel_id, "skipped").inc()
            return "skipped"
        recipient = typing.conversation_id.split(":", 1)[1]
        try:
            await indicator.send_typing(recipient, message_id=typing.message_id)
        except SendError as exc:
            TYPING_INDICATORS.labels(typing.channel_id, "failed").inc()
            _log.warning(
                "typing indicator failed; not retried",
                channel=typing.channel_id,
                turn_id=typing.turn_id,
                error=str(exc),
            )
            return "failed"
        TYPING_INDICATORS.labels(typing.channel_id, "sent").inc()
        partition = conversation.partition
        await self._redis.zadd(
            self._keys.typing_due(partition), {typing.member(): now + typing.every_ms}
        )
        return "sent"

    async def _now_ms(self) -> int:
        seconds, micros = await self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000
