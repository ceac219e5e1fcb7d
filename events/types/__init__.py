"""Payload models of every event type, one module per domain."""

from events.types.agent import AgentResponseGenerated, TokenUsage
from events.types.conversation import ConversationReleased, HumanHandoffRequested
from events.types.delivery import DeliveryError, DeliveryStatusUpdated
from events.types.inbound_content import (
    InboundContacts,
    InboundContent,
    InboundEdit,
    InboundInteractive,
    InboundLocation,
    InboundMedia,
    InboundReaction,
    InboundText,
    InboundUnsupported,
    SharedContact,
    SharedPhone,
)
from events.types.inbox import ContactIdentity, InboxMessageReceived
from events.types.memory import Fact, MemoryText, MemoryUpdateRequested
from events.types.reply_parts import (
    ReplyButton,
    ReplyButtons,
    ReplyMedia,
    ReplyPart,
    ReplyTemplate,
    ReplyText,
)
from events.types.routing import Intent, RoutingHandoffRequested, TurnMessage
from events.types.tools import ToolCallCompleted, ToolCallRequested, ToolError

__all__ = [
    "AgentResponseGenerated",
    "ContactIdentity",
    "ConversationReleased",
    "DeliveryError",
    "DeliveryStatusUpdated",
    "Fact",
    "HumanHandoffRequested",
    "InboundContacts",
    "InboundContent",
    "InboundEdit",
    "InboundInteractive",
    "InboundLocation",
    "InboundMedia",
    "InboundReaction",
    "InboundText",
    "InboundUnsupported",
    "InboxMessageReceived",
    "Intent",
    "MemoryText",
    "MemoryUpdateRequested",
    "ReplyButton",
    "ReplyButtons",
    "ReplyMedia",
    "ReplyPart",
    "ReplyTemplate",
    "ReplyText",
    "RoutingHandoffRequested",
    "SharedContact",
    "SharedPhone",
    "TokenUsage",
    "ToolCallCompleted",
    "ToolCallRequested",
    "ToolError",
    "TurnMessage",
]
