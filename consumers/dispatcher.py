"""Opens the conversation's turns (inbox.message.received): mailbox, policy, routing."""

from __future__ import annotations

import asyncio

from dispatcher.dispatching import Dispatcher
from dispatcher.sweeping import TurnSweeper
from dispatcher.wiring import build_turn_machinery
from events.streams import INBOX_MESSAGE_RECEIVED
from events.types.inbox import InboxMessageReceived
from libs.errors import Reject
from libs.resources import Resources
from libs.streams import Consumer, Received


class DispatcherHandler:
    """Admits each inbound message; sweeps stalled turns and due wake-ups in the background."""

    def __init__(self, dispatcher: Dispatcher, sweeper: TurnSweeper) -> None:
        self._dispatcher = dispatcher
        self._sweeper = sweeper

    async def __call__(self, delivery: Received) -> None:
        envelope = delivery.envelope
        if not isinstance(envelope.payload, InboxMessageReceived):
            raise Reject(f"expected an inbound message, got {envelope.type}")
        await self._dispatcher.admit(envelope)

    async def run_background(self, stopping: asyncio.Event) -> None:
        """Sweep until the runner stops."""
        await self._sweeper.run(stopping)


def _build(resources: Resources) -> DispatcherHandler:
    turns = build_turn_machinery(resources, "dispatcher")
    sweeper = TurnSweeper(
        turns.mailbox,
        turns.dispatcher,
        partitions=resources.settings.stream_partitions,
        max_attempts=turns.config.turn_max_attempts,
    )
    return DispatcherHandler(turns.dispatcher, sweeper)


consumer = Consumer(
    name="dispatcher",
    streams=(INBOX_MESSAGE_RECEIVED,),
    handler_factory=_build,
    accepts={INBOX_MESSAGE_RECEIVED: frozenset({1})},
)
