"""Typing indicators (routing.handoff.requested, group presence): shown when a turn opens and
refreshed while it runs (``delivery.presence``)."""

from __future__ import annotations

import asyncio

from channels.config import ChannelsConfig
from delivery.capabilities import ChannelCapabilities
from delivery.presence import TypingPresence
from dispatcher.config import ConversationsConfig
from dispatcher.mailbox import Mailbox
from events.streams import ROUTING_HANDOFF_REQUESTED
from events.types.routing import RoutingHandoffRequested
from libs.errors import Reject
from libs.resources import Resources
from libs.streams import Consumer, Received
from libs.streams.config import consumer_instance_name


class PresenceHandler:
    """Shows the indicator of each opened turn; refreshes open turns in the background."""

    def __init__(self, presence: TypingPresence, capabilities: ChannelCapabilities) -> None:
        self._presence = presence
        self._capabilities = capabilities

    async def __call__(self, received: Received) -> None:
        envelope = received.envelope
        if not isinstance(envelope.payload, RoutingHandoffRequested):
            raise Reject(f"expected an opened turn, got {envelope.type}")
        await self._presence.turn_opened(envelope)

    async def run_background(self, stopping: asyncio.Event) -> None:
        """Refresh the indicators of open turns until the worker stops."""
        await self._presence.run(stopping)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._capabilities.aclose()


def _build(resources: Resources) -> PresenceHandler:
    channels = resources.section("tenants", ChannelsConfig) or ChannelsConfig(tenants=[])
    config = resources.section("conversations", ConversationsConfig) or ConversationsConfig()
    partitions = resources.settings.stream_partitions
    mailbox = Mailbox(
        resources.redis,
        resources.keys,
        partitions=partitions,
        holder=consumer_instance_name(),
        turn_ttl_ms=int(config.turn_deadline_s * 1000),
        gap_wait_ms=config.gap_wait_ms,
    )
    capabilities = ChannelCapabilities(channels, redis=resources.redis, keys=resources.keys)
    presence = TypingPresence(
        redis=resources.redis,
        keys=resources.keys,
        mailbox=mailbox,
        indicators=capabilities.typing,
        partitions=partitions,
        max_typing_ms=int(config.turn_deadline_s * 1000),
    )
    return PresenceHandler(presence, capabilities)


consumer = Consumer(
    name="presence",
    streams=(ROUTING_HANDOFF_REQUESTED,),
    handler_factory=_build,
    accepts={ROUTING_HANDOFF_REQUESTED: frozenset({1})},
)
