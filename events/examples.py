"""One realistic, fixed example of every event type, for the docs and the schema files.

Ids and timestamps are constants so that regenerated documents are byte-identical.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from events.envelope import Envelope, EventPayload
from events.ids import derived_event_id
from events.types import (
    AgentResponseGenerated,
    ContactIdentity,
    ConversationReleased,
    DeliveryStatusUpdated,
    Fact,
    HumanHandoffRequested,
    InboundText,
    InboxMessageReceived,
    Intent,
    MemoryText,
    MemoryUpdateRequested,
    ReplyButton,
    ReplyButtons,
    RoutingHandoffRequested,
    ToolCallCompleted,
    ToolCallRequested,
    TurnMessage,
)

EXAMPLE_TENANT = "acme-dental"
EXAMPLE_CONVERSATION = "wa-main:5511987654321"
EXAMPLE_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
_START = datetime(2024, 7, 1, 12, 0, 0, tzinfo=UTC)
_TURN = "turn-01907a4c2b00"


def example_event_id(step: int) -> str:
    """Return a fixed, valid UUIDv7 for the ``step``-th event of the example conversation."""
    millis = int((_START + timedelta(seconds=step)).timestamp() * 1000)
    return str(uuid.UUID(int=millis << 80 | 0x7 << 76 | step << 64 | 0b10 << 62 | step))


# (step in the example conversation, step of the event that caused it or None, payload)
_EXAMPLES: dict[tuple[str, int], tuple[int, int | None, EventPayload]] = {
    (p.event_type, p.event_version): (step, cause, p)
    for step, cause, p in [
        (
            1,
            None,
            InboxMessageReceived(
                channel_id="wa-main",
                provider="whatsapp",
                provider_message_id="wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjA=",
                seq=1,
                contact=ContactIdentity(
                    provider_user_id="5511987654321", phone="+5511987654321", display_name="Ana"
                ),
                message=InboundText(text="Hi! Can I book a cleaning for Friday morning?"),
                provider_timestamp=_START - timedelta(seconds=1),
                received_at=_START,
            ),
        ),
        (
            2,
            1,
            RoutingHandoffRequested(
                turn_id=_TURN,
                fencing_token=42,
                channel_id="wa-main",
                agent_profile="scheduling",
                intent=Intent(name="book_appointment", confidence=0.93),
                messages=(
                    TurnMessage(
                        seq=1,
                        event_id=example_event_id(1),
                        provider_message_id="wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjA=",
                    ),
                ),
                deadline_at=_START + timedelta(seconds=62),
            ),
        ),
        (
            3,
            2,
            ToolCallRequested(
                turn_id=_TURN,
                fencing_token=42,
                tool_call_id="call_7Qp2",
                tool="appointments.find_slots",
                arguments={"service": "cleaning", "date": "2024-07-05", "part_of_day": "morning"},
                agent_profile="scheduling",
            ),
        ),
        (
            4,
            3,
            ToolCallCompleted(
                turn_id=_TURN,
                fencing_token=42,
                tool_call_id="call_7Qp2",
                tool="appointments.find_slots",
                outcome="ok",
                result={"slots": ["2024-07-05T09:00:00-03:00", "2024-07-05T10:30:00-03:00"]},
                duration_ms=84,
            ),
        ),
        (
            5,
            4,
            AgentResponseGenerated(
                turn_id=_TURN,
                fencing_token=42,
                reply_id=f"{_TURN}:reply",
                channel_id="wa-main",
                parts=(
                    ReplyButtons(
                        text="Friday the 5th has two openings. Which one suits you?",
                        buttons=(
                            ReplyButton(id="slot-0900", title="09:00"),
                            ReplyButton(id="slot-1030", title="10:30"),
                        ),
                    ),
                ),
                agent_profile="scheduling",
                model="gpt-4o-mini",
            ),
        ),
        (
            6,
            5,
            MemoryUpdateRequested(
                turn_id=_TURN,
                fencing_token=42,
                facts=(Fact(key="contact.first_name", value="Ana", source="channel"),),
                embed=(
                    MemoryText(
                        source_id=example_event_id(1),
                        role="contact",
                        text="Hi! Can I book a cleaning for Friday morning?",
                    ),
                ),
            ),
        ),
        (
            7,
            None,
            DeliveryStatusUpdated(
                channel_id="wa-main",
                provider_message_id="wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QTE=",
                status="read",
                provider_timestamp=_START + timedelta(seconds=30),
                reply_id=f"{_TURN}:reply",
            ),
        ),
        (
            8,
            2,
            HumanHandoffRequested(
                reason="asked_for_human",
                note="Contact asked to talk to the front desk about a bill.",
                requested_by="agent",
                channel_id="wa-main",
                turn_id=_TURN,
                fencing_token=42,
            ),
        ),
        (
            9,
            None,
            ConversationReleased(
                channel_id="wa-main",
                released_by="channel",
                status="resolved",
                provider_timestamp=_START + timedelta(minutes=20),
            ),
        ),
    ]
}


# The producer's role deriving each example from its cause, and the key, as the workers do.
_DERIVED_BY: dict[str, tuple[str, str]] = {
    "routing.handoff.requested": ("dispatcher", ""),
    "tools.call.requested": ("ai-agent", "call_7Qp2"),
    "tools.call.completed": ("tool-gateway", ""),
    "agent.ai.response.generated": ("ai-agent", ""),
    "memory.update.requested": ("ai-agent", ""),
    "conversation.handoff.human": ("dispatcher", ""),
}

_BY_STEP = {step: (cause, payload) for step, cause, payload in _EXAMPLES.values()}


def _example_id(step: int) -> str:
    """The id of the ``step``-th event: fixed for a first event, derived from its cause else."""
    cause, payload = _BY_STEP[step]
    if cause is None:
        return example_event_id(step)
    try:
        role, key = _DERIVED_BY[payload.event_type]
    except KeyError:
        raise LookupError(
            f"no producer role for the example of {payload.event_type}: add one to _DERIVED_BY"
        ) from None
    return derived_event_id(_example_id(cause), role=role, event_type=payload.event_type, key=key)


def example_envelope(event_type: str, version: int) -> Envelope[Any]:
    """Return the fixed example envelope of ``event_type`` at ``version``."""
    try:
        step, cause, payload = _EXAMPLES[(event_type, version)]
    except KeyError:
        raise LookupError(
            f"no example for {event_type} v{version}: add one to events/examples.py"
        ) from None
    envelope_type: type[Envelope[Any]] = Envelope[type(payload)]  # type: ignore[misc,assignment]
    return envelope_type(
        id=_example_id(step),
        type=event_type,
        version=version,
        occurred_at=_START + timedelta(seconds=step),
        tenant_id=EXAMPLE_TENANT,
        conversation_id=EXAMPLE_CONVERSATION,
        causation_id=_example_id(cause) if cause is not None else None,
        correlation_id=example_event_id(1) if cause is not None else example_event_id(step),
        traceparent=EXAMPLE_TRACEPARENT,
        payload=payload,
    )
