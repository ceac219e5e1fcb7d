"""The dispatcher's sweep: open turns whose wake-up came due, resume turns past their deadline.

Each sweep reads, per partition, a bounded range of two sorted sets by score (never a scan of
keys): merge windows and sequence gaps that ended, and open turns past their deadline. Every
replica sweeps every partition; the scripts make a second sweeper's attempt a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog
from redis.exceptions import RedisError

from dispatcher.dispatching import Dispatcher
from dispatcher.mailbox import ConversationRef, Mailbox

_log = structlog.get_logger("atende.dispatcher")


class TurnSweeper:
    """Sweeps ``partitions`` every ``interval_s`` until stopped."""

    def __init__(
        self,
        mailbox: Mailbox,
        dispatcher: Dispatcher,
        *,
        partitions: int,
        max_attempts: int,
        interval_s: float = 0.25,
        batch: int = 50,
    ) -> None:
        self._mailbox = mailbox
        self._dispatcher = dispatcher
        self._partitions = partitions
        self._max_attempts = max_attempts
        self._interval_s = interval_s
        self._batch = batch

    async def run(self, stopping: asyncio.Event) -> None:
        """Sweep until ``stopping`` is set; a failed sweep is logged and tried again."""
        while not stopping.is_set():
            try:
                await self.sweep()
            except (RedisError, OSError, asyncpg.PostgresError) as exc:
                _log.warning("turn sweep failed; will retry", error=str(exc))
            except Exception:  # noqa: BLE001 - the loop boundary: a dead sweep strands turns
                _log.exception("turn sweep failed unexpectedly; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._interval_s)

    async def sweep(self) -> int:
        """One pass over every partition; return how many turns it opened or resumed."""
        started = 0
        for partition in range(self._partitions):
            for conversation in await self._mailbox.due_wakeups(partition, self._batch):
                started += await self._wake(conversation)
            for conversation in await self._mailbox.due_turns(partition, self._batch):
                started += await self._resume(conversation)
        return started

    async def _wake(self, conversation: ConversationRef) -> int:
        transition = await self._mailbox.open_waiting(conversation)
        if transition.turn is None:
            return 0
        await self._dispatcher.start(transition.turn, None)
        return 1

    async def _resume(self, conversation: ConversationRef) -> int:
        transition = await self._mailbox.resume(conversation, self._max_attempts)
        if transition.turn is None:
            return 0
        if transition.outcome == "exhausted":
            _log.warning(
                "turn stalled past its attempts; handing it to a human",
                turn_id=transition.turn.turn_id,
                attempts=transition.turn.attempt - 1,
            )
            await self._dispatcher.hand_off_stalled(transition.turn)
            return 0
        _log.warning(
            "stalled turn resumed", turn_id=transition.turn.turn_id, attempt=transition.turn.attempt
        )
        await self._dispatcher.start(transition.turn, None)
        return 1
