"""Logical stream names. A logical stream is P physical streams (see ``libs.keys``)."""

from __future__ import annotations

from typing import Final

INBOX_MESSAGE_RECEIVED: Final = "inbox.message.received"
ROUTING_HANDOFF_REQUESTED: Final = "routing.handoff.requested"
AGENT_AI_RESPONSE_GENERATED: Final = "agent.ai.response.generated"
TOOLS_CALL_REQUESTED: Final = "tools.call.requested"
TOOLS_CALL_COMPLETED: Final = "tools.call.completed"
MEMORY_UPDATE_REQUESTED: Final = "memory.update.requested"
CONVERSATION_HANDOFF_HUMAN: Final = "conversation.handoff.human"
DELIVERY_STATUS_UPDATED: Final = "delivery.status.updated"

ALL_STREAMS: Final[tuple[str, ...]] = (
    INBOX_MESSAGE_RECEIVED,
    ROUTING_HANDOFF_REQUESTED,
    AGENT_AI_RESPONSE_GENERATED,
    TOOLS_CALL_REQUESTED,
    TOOLS_CALL_COMPLETED,
    MEMORY_UPDATE_REQUESTED,
    CONVERSATION_HANDOFF_HUMAN,
    DELIVERY_STATUS_UPDATED,
)

DLQ_SUFFIX: Final = ".dlq"


def dead_letter_stream(stream: str) -> str:
    """Return the logical dead-letter stream of ``stream``."""
    return stream + DLQ_SUFFIX
