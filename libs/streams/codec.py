"""Stream entry fields <-> envelopes.

An entry carries ``type`` and ``version`` beside the envelope JSON so a consumer picks the
model without parsing the JSON twice, and an operator reading the stream sees what it is.
"""

from __future__ import annotations

from typing import Any

from events.envelope import Envelope
from events.registry import EventDecodeError, EventRegistry, encode

TYPE_FIELD = b"type"
VERSION_FIELD = b"version"
ENVELOPE_FIELD = b"envelope"

EntryFields = dict[bytes, bytes]


def entry_fields(envelope: Envelope[Any]) -> dict[str, bytes | str | int]:
    """Return the XADD fields of ``envelope``."""
    return {"type": envelope.type, "version": envelope.version, "envelope": encode(envelope)}


def decode_entry(
    registry: EventRegistry, fields: EntryFields, kind: tuple[str, int] | None = None
) -> Envelope[Any]:
    """Decode an entry read from a stream; raise ``EventDecodeError`` naming what is wrong.

    ``kind`` is the entry's (type, version) when the caller has already read it.
    """
    if kind is not None and ENVELOPE_FIELD in fields:
        return registry.decode(kind[0], kind[1], fields[ENVELOPE_FIELD])
    try:
        event_type = fields[TYPE_FIELD].decode()
        version = int(fields[VERSION_FIELD])
        data = fields[ENVELOPE_FIELD]
    except KeyError as exc:
        raise EventDecodeError(f"stream entry has no {exc.args[0].decode()!r} field") from None
    except (ValueError, UnicodeDecodeError):
        raise EventDecodeError("stream entry has a malformed type or version field") from None
    return registry.decode(event_type, version, data)


def entry_type(fields: EntryFields) -> tuple[str, int] | None:
    """Return (type, version) of an entry without decoding it, or None when unreadable."""
    try:
        return fields[TYPE_FIELD].decode(), int(fields[VERSION_FIELD])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
