"""Building the turn machinery from a process's resources (the dispatcher and delivery both
open, close and publish turns)."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.config import ConversationsConfig
from dispatcher.dispatching import Dispatcher
from dispatcher.mailbox import Mailbox
from dispatcher.routing import Router
from dispatcher.store import DispatcherStore
from libs.resources import Resources
from libs.streams.config import consumer_instance_name
from memory_manager.config import MemoryConfig
from memory_manager.embedders import build_embedder


@dataclass(frozen=True, slots=True)
class TurnMachinery:
    """The mailbox, the Postgres store and the dispatcher that routes and publishes turns."""

    config: ConversationsConfig
    mailbox: Mailbox
    store: DispatcherStore
    dispatcher: Dispatcher


def build_turn_machinery(resources: Resources, component: str) -> TurnMachinery:
    """Build it on ``resources`` (Postgres required); ``component`` names who needs it."""
    if resources.postgres is None:
        raise RuntimeError(f"the {component} needs Postgres (DATABASE_URL)")
    config = resources.section("conversations", ConversationsConfig) or ConversationsConfig()
    memory = resources.section("memory", MemoryConfig) or MemoryConfig()
    mailbox = Mailbox(
        resources.redis,
        resources.keys,
        partitions=resources.settings.stream_partitions,
        holder=consumer_instance_name(),
        turn_ttl_ms=int(config.turn_deadline_s * 1000),
        gap_wait_ms=config.gap_wait_ms,
    )
    store = DispatcherStore(resources.postgres)
    dispatcher = Dispatcher(
        store=store,
        mailbox=mailbox,
        router=Router(config, build_embedder(memory)),
        publish=resources.publisher.publish,
        config=config,
    )
    return TurnMachinery(config, mailbox, store, dispatcher)
