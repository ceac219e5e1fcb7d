"""Opens the conversation's turns (inbox.message.received): mailbox, policy, routing."""

from __future__ import annotations

import asyncio

from dispatcher.config import ConversationsConfig
from dispatcher.dispatching import Dispatcher
from dispatcher.mailbox import Mailbox
from dispatcher.routing import Router
from dispatcher.store import DispatcherStore
from dispatcher.sweeping import TurnSweeper
from events.streams import INBOX_MESSAGE_RECEIVED
from events.types.inbox import InboxMessageReceived
from libs.errors import Reject
from libs.resources import Resources
from libs.streams import Consumer, Delivery
from libs.streams.config import consumer_instance_name
from memory_manager.config import MemoryConfig
from memory_manager.embedders import build_embedder


class DispatcherHandler:
    """Admits each inbound message; sweeps stalled turns and due wake-ups in the background."""

    def __init__(self, dispatcher: Dispatcher, sweeper: TurnSweeper) -> None:
        self._dispatcher = dispatcher
        self._sweeper = sweeper

    async def __call__(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        if not isinstance(envelope.payload, InboxMessageReceived):
            raise Reject(f"expected an inbound message, got {envelope.type}")
        await self._dispatcher.admit(envelope)

    async def run_background(self, stopping: asyncio.Event) -> None:
        """Sweep until the runner stops."""
        await self._sweeper.run(stopping)


def _build(resources: Resources) -> DispatcherHandler:
    if resources.postgres is None:
        raise RuntimeError("the dispatcher needs Postgres (DATABASE_URL)")
    config = resources.section("conversations", ConversationsConfig) or ConversationsConfig()
    memory = resources.section("memory", MemoryConfig) or MemoryConfig()
    partitions = resources.settings.stream_partitions
    mailbox = Mailbox(
        resources.redis,
        resources.keys,
        partitions=partitions,
        holder=consumer_instance_name(),
        turn_ttl_ms=int(config.turn_deadline_s * 1000),
        gap_wait_ms=config.gap_wait_ms,
    )
    dispatcher = Dispatcher(
        store=DispatcherStore(resources.postgres),
        mailbox=mailbox,
        router=Router(config, build_embedder(memory)),
        publish=resources.publisher.publish,
        config=config,
    )
    sweeper = TurnSweeper(
        mailbox, dispatcher, partitions=partitions, max_attempts=config.turn_max_attempts
    )
    return DispatcherHandler(dispatcher, sweeper)


consumer = Consumer(
    name="dispatcher",
    streams=(INBOX_MESSAGE_RECEIVED,),
    handler_factory=_build,
    accepts={INBOX_MESSAGE_RECEIVED: frozenset({1})},
)
