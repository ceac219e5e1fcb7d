"""Lookup of payload models by (type, version), and envelope encoding."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from events.envelope import Envelope, EventPayload, unknown_fields


class EventContractError(Exception):
    """Root of the errors raised by the event contract."""


class UnknownEventType(EventContractError):
    """No payload model is registered for this type and version."""


class EventDecodeError(EventContractError):
    """Bytes that claim to be an event do not match its model."""


class DuplicateEventType(EventContractError):
    """Two payload models claim the same type and version."""


class EventRegistry:
    """The payload model of each (type, version), with cached envelope types."""

    def __init__(self, payload_types: Iterable[type[EventPayload]]) -> None:
        self._payloads: dict[tuple[str, int], type[EventPayload]] = {}
        self._envelopes: dict[tuple[str, int], type[Envelope[Any]]] = {}
        for payload_type in payload_types:
            key = (payload_type.event_type, payload_type.event_version)
            if key in self._payloads:
                raise DuplicateEventType(f"event type {key[0]} v{key[1]} is registered twice")
            self._payloads[key] = payload_type
            self._envelopes[key] = Envelope[payload_type]  # type: ignore[valid-type]

    def __iter__(self) -> Iterator[type[EventPayload]]:
        return iter(self._payloads.values())

    def __len__(self) -> int:
        return len(self._payloads)

    def payload_types(self) -> list[type[EventPayload]]:
        """Return every registered payload model, sorted by type then version."""
        return [self._payloads[key] for key in sorted(self._payloads)]

    def payload_type(self, event_type: str, version: int) -> type[EventPayload]:
        """Return the payload model of ``event_type`` at ``version``."""
        try:
            return self._payloads[(event_type, version)]
        except KeyError:
            raise UnknownEventType(f"no event type {event_type!r} version {version}") from None

    def envelope_type(self, event_type: str, version: int) -> type[Envelope[Any]]:
        """Return ``Envelope[Payload]`` for ``event_type`` at ``version``."""
        try:
            return self._envelopes[(event_type, version)]
        except KeyError:
            raise UnknownEventType(f"no event type {event_type!r} version {version}") from None

    def decode(
        self, event_type: str, version: int, data: bytes | str, *, strict: bool = False
    ) -> Envelope[Any]:
        """Decode envelope JSON; ``strict`` rejects fields the model does not declare."""
        envelope_type = self.envelope_type(event_type, version)
        try:
            envelope = envelope_type.model_validate_json(data)
        except ValidationError as exc:
            raise EventDecodeError(
                f"{event_type} v{version} does not match its schema: {_first_error(exc)}"
            ) from exc
        if envelope.type != event_type or envelope.version != version:
            raise EventDecodeError(
                f"envelope says {envelope.type} v{envelope.version}, "
                f"stream entry says {event_type} v{version}"
            )
        if strict and (extra := unknown_fields(envelope)):
            raise EventDecodeError(f"{event_type} v{version} has unknown fields: {extra}")
        return envelope


def encode(envelope: Envelope[Any]) -> bytes:
    """Return the JSON bytes of ``envelope`` (unknown kept fields included)."""
    return envelope.model_dump_json().encode()


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"]) or "(root)"
    return f"{location}: {error['msg']}"
