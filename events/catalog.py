"""Every event type atende publishes, at every version still read or written."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from events.registry import EventRegistry
from events.streams import ALL_STREAMS
from events.types import (
    AgentResponseGenerated,
    ConversationReleased,
    DeliveryStatusUpdated,
    HumanHandoffRequested,
    InboxMessageReceived,
    MemoryUpdateRequested,
    RoutingHandoffRequested,
    ToolCallCompleted,
    ToolCallRequested,
)

CATALOG: Final = EventRegistry(
    [
        InboxMessageReceived,
        RoutingHandoffRequested,
        AgentResponseGenerated,
        ToolCallRequested,
        ToolCallCompleted,
        MemoryUpdateRequested,
        HumanHandoffRequested,
        ConversationReleased,
        DeliveryStatusUpdated,
    ]
)


def _stream_of_type(registry: EventRegistry) -> Mapping[str, str]:
    streams: dict[str, str] = {}
    for payload_type in registry.payload_types():
        if payload_type.stream not in ALL_STREAMS:
            raise ValueError(
                f"{payload_type.__name__} publishes to {payload_type.stream!r}, "
                "which is not in events.streams.ALL_STREAMS"
            )
        previous = streams.setdefault(payload_type.event_type, payload_type.stream)
        if previous != payload_type.stream:
            # A consumer finds every version of a type on one stream; moving a type is a new type.
            raise ValueError(
                f"{payload_type.event_type} is published to both {previous!r} "
                f"and {payload_type.stream!r}"
            )
    return MappingProxyType(streams)


STREAM_OF_TYPE: Final[Mapping[str, str]] = _stream_of_type(CATALOG)
"""Logical stream of each event type, for publishers that hold only the type name."""
