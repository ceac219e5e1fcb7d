"""The envelope every event travels in, and the base of every typed payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from events.ids import derived_event_id, new_event_id


class EventPayload(BaseModel):
    """Base of every event payload.

    Unknown fields are kept (``extra="allow"``) so a newer producer never breaks an older
    consumer; edges that must reject them decode with ``strict=True`` (see ``registry``).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    event_type: ClassVar[str]
    event_version: ClassVar[int]
    stream: ClassVar[str]


P = TypeVar("P", bound=EventPayload)

_TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


class Envelope(BaseModel, Generic[P]):
    """Identity, causality and trace context around one typed payload.

    The first event of a chain (a webhook's) gets a fresh id (``new``). An event caused by
    another gets an id derived from the cause's id and the producer's role (``derived``), so a
    producer that handles a redelivered cause again republishes the same id.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(
        description="Time-ordered unique id (UUIDv7). For an event caused by another, derived "
        "from the cause's id, the producer's role, the type and a key, so a republish after a "
        "crash carries the same id."
    )
    type: str = Field(description="Event type, e.g. `inbox.message.received`.")
    version: int = Field(ge=1, description="Version of the payload schema.")
    occurred_at: datetime = Field(description="When the fact happened (UTC).")
    tenant_id: str = Field(
        min_length=1, max_length=128, description="Tenant that owns the conversation."
    )
    conversation_id: str = Field(
        min_length=1,
        max_length=256,
        description="Conversation within the tenant; with the tenant, picks the partition.",
    )
    causation_id: str | None = Field(
        default=None, description="Id of the event that caused this one; none for a webhook."
    )
    correlation_id: str = Field(description="Id of the first event of the causal chain.")
    traceparent: str | None = Field(
        default=None, pattern=_TRACEPARENT_PATTERN, description="W3C trace context."
    )
    tracestate: str | None = Field(
        default=None, max_length=512, description="W3C trace state of the vendor systems."
    )
    payload: P

    @classmethod
    def new(
        cls,
        payload: P,
        *,
        tenant_id: str,
        conversation_id: str,
        occurred_at: datetime | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Envelope[P]:
        """Wrap ``payload`` in the first envelope of a causal chain (e.g. from a webhook).

        An event that reacts to another is made with ``derived`` instead.
        """
        event_id = new_event_id()
        return _wrap(
            payload,
            event_id=event_id,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            causation_id=None,
            correlation_id=event_id,
            occurred_at=occurred_at,
            traceparent=traceparent,
            tracestate=tracestate,
        )

    @classmethod
    def derived(
        cls,
        payload: P,
        *,
        cause: Envelope[Any],
        role: str,
        key: str = "",
        conversation_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope[P]:
        """Wrap ``payload`` in the envelope of the event ``role`` publishes because of ``cause``.

        The id comes from ``derived_event_id`` (the cause's id, ``role``, the payload's type and
        ``key``, which tells apart several events of one type from one cause), so handling a
        redelivered cause again republishes the same id and consumers idempotent by event id
        drop the copy. Tenant, conversation (unless given), correlation and trace context are
        the cause's.
        """
        event_id = derived_event_id(cause.id, role=role, event_type=payload.event_type, key=key)
        return _wrap(
            payload,
            event_id=event_id,
            tenant_id=cause.tenant_id,
            conversation_id=conversation_id or cause.conversation_id,
            causation_id=cause.id,
            correlation_id=cause.correlation_id,
            occurred_at=occurred_at,
            traceparent=cause.traceparent,
            tracestate=cause.tracestate,
        )

    @property
    def stream(self) -> str:
        """Logical stream this event is published to."""
        return self.payload.stream

    def with_trace(self, traceparent: str | None, tracestate: str | None) -> Self:
        """Return a copy carrying the given trace context."""
        return self.model_copy(update={"traceparent": traceparent, "tracestate": tracestate})


_envelope_types: dict[type[EventPayload], type[Envelope[Any]]] = {}


def _wrap(
    payload: P,
    *,
    event_id: str,
    tenant_id: str,
    conversation_id: str,
    causation_id: str | None,
    correlation_id: str,
    occurred_at: datetime | None,
    traceparent: str | None,
    tracestate: str | None,
) -> Envelope[P]:
    envelope_type = _envelope_types.get(type(payload))
    if envelope_type is None:
        # ``Envelope[X]`` finds pydantic's cached parametrization, but slowly (microseconds
        # per event on the ingress's hot path); the few payload types are kept here.
        parametrized: type[Envelope[Any]] = Envelope[type(payload)]  # type: ignore[misc,assignment]
        envelope_type = _envelope_types[type(payload)] = parametrized
    return envelope_type(
        id=event_id,
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=occurred_at or datetime.now(UTC),
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        causation_id=causation_id,
        correlation_id=correlation_id,
        traceparent=traceparent,
        tracestate=tracestate,
        payload=payload,
    )


def unknown_fields(model: BaseModel, path: str = "") -> list[str]:
    """Return the dotted paths of fields that ``model`` kept but does not declare."""
    found = [f"{path}{name}" for name in (model.model_extra or {})]
    for name in type(model).model_fields:
        found.extend(_unknown_in_value(getattr(model, name), f"{path}{name}"))
    return found


def _unknown_in_value(value: object, path: str) -> list[str]:
    if isinstance(value, BaseModel):
        return unknown_fields(value, path + ".")
    if isinstance(value, list | tuple):
        found: list[str] = []
        for index, item in enumerate(value):
            found.extend(_unknown_in_value(item, f"{path}[{index}]"))
        return found
    return []
