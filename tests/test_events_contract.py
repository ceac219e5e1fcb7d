"""The event contract: every type round-trips, unknown fields, errors, partitions and ids."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from events.catalog import CATALOG, STREAM_OF_TYPE
from events.envelope import Envelope, EventPayload
from events.examples import example_envelope
from events.ids import new_event_id
from events.partitions import jump_hash, partition_for
from events.registry import EventDecodeError, UnknownEventType, encode
from events.streams import ALL_STREAMS
from events.types import (
    AgentResponseGenerated,
    ContactIdentity,
    InboundContacts,
    InboundContent,
    InboundEdit,
    InboundInteractive,
    InboundLocation,
    InboundMedia,
    InboundReaction,
    InboundText,
    InboundUnsupported,
    InboxMessageReceived,
    ReplyMedia,
    ReplyPart,
    ReplyTemplate,
    ReplyText,
    SharedContact,
    SharedPhone,
    ToolCallCompleted,
    ToolCallRequested,
    ToolError,
)

NOW = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)

INBOUND_CONTENT: list[InboundContent] = [
    InboundText(text="olá"),
    InboundMedia(
        media_kind="voice",
        media_id="1013859600285441",
        mime_type="audio/ogg; codecs=opus",
        sha256="a" * 64,
        duration_s=3.5,
    ),
    InboundMedia(
        media_kind="document", url="https://cdn.example.com/f.pdf?sig=a%2Fb", filename="f.pdf"
    ),
    InboundLocation(latitude=-23.55, longitude=-46.63, name="Clinic", address="Av. Paulista 1"),
    InboundContacts(
        contacts=(SharedContact(name="Bia", phones=(SharedPhone(number="+55 11 91234-5678"),)),)
    ),
    InboundInteractive(interaction="button_reply", reply_id="slot-0900", title="09:00"),
    InboundInteractive(interaction="callback_query", reply_id="cb:1", payload="{}"),
    InboundReaction(target_message_id="wamid.X", emoji="👍"),
    InboundReaction(target_message_id="wamid.X", removed=True),
    InboundEdit(target_message_id="wamid.X", text="friday, not thursday"),
    InboundUnsupported(provider_type="poll", raw={"question": "?", "options": [1, 2, None]}),
]

REPLY_PARTS: list[ReplyPart] = [
    ReplyText(text="Hello"),
    ReplyMedia(media_kind="image", url="https://cdn.example.com/map.png", caption="Here"),
    ReplyTemplate(name="appointment_reminder", language="pt_BR", parameters=("Ana", "09:00")),
]


def _inbox(message: InboundContent) -> InboxMessageReceived:
    return InboxMessageReceived(
        channel_id="wa-main",
        provider="whatsapp",
        provider_message_id="wamid.1",
        seq=7,
        contact=ContactIdentity(provider_user_id="5511987654321", phone="+5511987654321"),
        message=message,
        reply_to="wamid.0",
        received_at=NOW,
    )


def _samples() -> list[EventPayload]:
    samples: list[EventPayload] = [
        example_envelope(p.event_type, p.event_version).payload for p in CATALOG.payload_types()
    ]
    samples += [_inbox(content) for content in INBOUND_CONTENT]
    samples += [
        AgentResponseGenerated(
            turn_id="t1", fencing_token=3, reply_id="t1:r", channel_id="tg-bot", parts=(part,)
        )
        for part in REPLY_PARTS
    ]
    samples.append(
        AgentResponseGenerated(
            turn_id="t1",
            fencing_token=3,
            reply_id="t1:r",
            channel_id="tg-bot",
            parts=(),
            handoff=True,
            handoff_reason="model unavailable",
        )
    )
    samples.append(
        ToolCallCompleted(
            turn_id="t1",
            fencing_token=3,
            tool_call_id="call_1",
            tool="appointments.book",
            outcome="error",
            error=ToolError(code="rate_limited", message="Too many bookings.", retry_after_ms=500),
            duration_ms=2,
        )
    )
    return samples


SAMPLES = _samples()


def _envelope(payload: EventPayload) -> Envelope[Any]:
    return Envelope.new(payload, tenant_id="acme", conversation_id="wa-main:5511987654321")


def _example_data(event_type: str) -> dict[str, Any]:
    return example_envelope(event_type, 1).model_dump(mode="json")


def test_catalog_has_a_type_for_every_stream() -> None:
    assert set(STREAM_OF_TYPE.values()) == set(ALL_STREAMS)
    assert all(p.stream in ALL_STREAMS for p in CATALOG.payload_types())
    assert all(p.__doc__ for p in CATALOG.payload_types())


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: type(p).__name__)
def test_every_type_round_trips(payload: EventPayload) -> None:
    envelope = _envelope(payload)
    data = encode(envelope)
    decoded = CATALOG.decode(envelope.type, envelope.version, data, strict=True)
    assert decoded == envelope
    assert encode(decoded) == data
    assert decoded.stream == STREAM_OF_TYPE[envelope.type]


def test_unknown_fields_are_kept_inside_and_rejected_at_the_edge() -> None:
    data = _example_data("inbox.message.received")
    data["priority"] = "high"
    data["payload"]["message"]["spoiler"] = True
    raw = json.dumps(data)

    decoded = CATALOG.decode("inbox.message.received", 1, raw)
    assert decoded.model_extra == {"priority": "high"}
    assert decoded.payload.message.model_extra == {"spoiler": True}
    assert json.loads(encode(decoded))["payload"]["message"]["spoiler"] is True

    with pytest.raises(EventDecodeError, match=r"payload\.message\.spoiler"):
        CATALOG.decode("inbox.message.received", 1, raw, strict=True)


def test_unknown_type_or_version_is_refused() -> None:
    raw = json.dumps(_example_data("inbox.message.received"))
    with pytest.raises(UnknownEventType, match=r"inbox\.message\.sent"):
        CATALOG.decode("inbox.message.sent", 1, raw)
    with pytest.raises(UnknownEventType, match="version 2"):
        CATALOG.decode("inbox.message.received", 2, raw)


def test_envelope_that_disagrees_with_its_stream_entry_is_refused() -> None:
    data = _example_data("inbox.message.received")
    data["version"] = 3
    with pytest.raises(EventDecodeError, match=r"envelope says inbox\.message\.received v3"):
        CATALOG.decode("inbox.message.received", 1, json.dumps(data))


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


INVALID = [
    ("inbox.message.received", "payload.seq", 0, "payload.seq"),
    ("inbox.message.received", "payload.provider", "sms", "payload.provider"),
    ("inbox.message.received", "payload.contact.phone", "11 98765", "payload.contact.phone"),
    ("inbox.message.received", "payload.received_at", "2024-07-01T12:00:00", "received_at"),
    ("inbox.message.received", "payload.message", {"kind": "hologram"}, "payload.message"),
    ("inbox.message.received", "payload.message.text", "x" * 65_537, "message.text.text"),
    (
        "inbox.message.received",
        "payload.message",
        {"kind": "location", "latitude": 91, "longitude": 0},
        "payload.message.location.latitude",
    ),
    (
        "inbox.message.received",
        "payload.message",
        {"kind": "media", "media_kind": "image"},
        "media_id or a url",
    ),
    (
        "inbox.message.received",
        "payload.message",
        {"kind": "reaction", "target_message_id": "w"},
        "needs an emoji",
    ),
    ("routing.handoff.requested", "payload.fencing_token", 0, "payload.fencing_token"),
    ("routing.handoff.requested", "payload.intent.confidence", 1.5, "intent.confidence"),
    ("tools.call.requested", "payload.tool", "Book Appointment", "payload.tool"),
    ("tools.call.requested", "payload.arguments", [1, 2], "payload.arguments"),
    ("tools.call.completed", "payload.outcome", "error", "needs an error"),
    ("agent.ai.response.generated", "payload.parts", [], "at least one part"),
    ("agent.ai.response.generated", "payload.parts.0.kind", "carousel", "payload.parts.0"),
    ("memory.update.requested", "payload.facts.0.confidence", -0.1, "facts.0.confidence"),
    ("memory.update.requested", "payload.fencing_token", None, "set together"),
    ("conversation.handoff.human", "payload.requested_by", "cron", "payload.requested_by"),
    ("delivery.status.updated", "payload.status", "bounced", "payload.status"),
    ("delivery.status.updated", "traceparent", "not-a-trace", "traceparent"),
]


@pytest.mark.parametrize(("event_type", "path", "value", "named"), INVALID)
def test_invalid_values_are_rejected_naming_the_field(
    event_type: str, path: str, value: Any, named: str
) -> None:
    data = _example_data(event_type)
    _set(data, path, value)
    with pytest.raises(EventDecodeError) as caught:
        CATALOG.decode(event_type, 1, json.dumps(data))
    assert named in str(caught.value)
    assert event_type in str(caught.value)


def test_turn_messages_must_be_in_seq_order() -> None:
    data = _example_data("routing.handoff.requested")
    first = data["payload"]["messages"][0]
    data["payload"]["messages"] = [{**first, "seq": 2}, {**first, "seq": 1}]
    with pytest.raises(EventDecodeError, match="increasing seq order"):
        CATALOG.decode("routing.handoff.requested", 1, json.dumps(data))


def test_constructing_an_invalid_payload_fails_at_the_producer() -> None:
    with pytest.raises(ValidationError, match="button ids must be unique"):
        AgentResponseGenerated.model_validate(
            {
                **_example_data("agent.ai.response.generated")["payload"],
                "parts": [
                    {
                        "kind": "buttons",
                        "text": "Pick",
                        "buttons": [{"id": "a", "title": "A"}, {"id": "a", "title": "B"}],
                    }
                ],
            }
        )


def test_tool_call_idempotency_key_joins_turn_and_call() -> None:
    payload = example_envelope("tools.call.requested", 1).payload
    assert isinstance(payload, ToolCallRequested)
    assert payload.idempotency_key == f"{payload.turn_id}:{payload.tool_call_id}"


def test_caused_events_continue_the_chain_and_the_trace() -> None:
    cause = example_envelope("inbox.message.received", 1)
    effect = Envelope.derived(
        example_envelope("routing.handoff.requested", 1).payload, cause=cause, role="dispatcher"
    )
    assert (effect.tenant_id, effect.conversation_id) == (cause.tenant_id, cause.conversation_id)
    assert effect.causation_id == cause.id
    assert effect.correlation_id == cause.correlation_id
    assert effect.traceparent == cause.traceparent


@pytest.mark.parametrize(
    ("key", "buckets", "expected"),
    # Published reference vectors of jump consistent hashing.
    [(1, 1, 0), (42, 57, 43), (0xDEAD10CC, 1, 0), (0xDEAD10CC, 666, 361), (256, 1024, 520)],
)
def test_jump_hash_matches_reference_vectors(key: int, buckets: int, expected: int) -> None:
    assert jump_hash(key, buckets) == expected


@pytest.mark.parametrize(
    ("tenant", "conversation", "partitions", "expected"),
    [
        ("acme", "wa-main:5511987654321", 16, 1),
        ("acme", "tg:42", 16, 8),
        ("globex", "c-1", 8, 6),
        ("globex", "c-1", 1, 0),
        ("acme", "wa-main:5511987654321", 1024, 260),
    ],
)
def test_partition_of_a_conversation_never_changes(
    tenant: str, conversation: str, partitions: int, expected: int
) -> None:
    # Pinned: a change here would reroute live conversations to other partitions.
    assert partition_for(tenant, conversation, partitions) == expected


def test_partitions_spread_evenly_and_move_little_when_grown() -> None:
    conversations = [f"wa:{n}" for n in range(16_000)]
    before = [partition_for("acme", c, 16) for c in conversations]
    counts = Counter(before)
    assert set(counts) == set(range(16))
    assert max(counts.values()) < 1.1 * 1_000
    assert min(counts.values()) > 0.9 * 1_000

    after = [partition_for("acme", c, 17) for c in conversations]
    moved = [new for old, new in zip(before, after, strict=True) if old != new]
    assert set(moved) == {16}  # keys only move to the new partition
    assert len(moved) < 1.3 * len(conversations) / 17


def test_jump_hash_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        jump_hash(1, 0)


def test_event_ids_are_uuid7_in_creation_order() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    parsed = [uuid.UUID(value) for value in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    millis = parsed[0].int >> 80
    assert abs(millis - datetime.now(UTC).timestamp() * 1000) < 60_000
