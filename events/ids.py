"""Time-ordered event ids (UUIDv7, RFC 9562): fresh ones, and ones derived from a causing event.

A fresh id has a monotonic sequence inside one millisecond. A derived id is a function of the
causing event's id, the producer's role, the event type and a key, so a producer that handles a
redelivered cause again publishes the same id (see ``derived_event_id``).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid

_RAND_A_MAX = 0xFFF
_RAND_B_MASK = (1 << 62) - 1
# The 48-bit millisecond and the 12-bit sequence after it, read as one 60-bit counter.
_COUNTER_MASK = (1 << 60) - 1
# Names this derivation in the hash, so a later scheme can never reproduce one of its ids.
_DERIVATION = b"atende.derived-event-id.v1"


def _uuid7(counter: int, rand_b: int) -> str:
    """The canonical form of the UUIDv7 with ``counter`` (ms << 12 | rand_a) and ``rand_b``."""
    ms, rand_a = counter >> 12, counter & _RAND_A_MAX
    value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    # The 8-4-4-4-12 form, written directly: a third of the cost of going through uuid.UUID.
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class _UUID7Source:
    """Issues UUIDv7 strings that sort in creation order within this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0

    def next(self) -> str:
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if now_ms > self._last_ms:
                self._last_ms = now_ms
                self._seq = int.from_bytes(os.urandom(2), "big") & 0x3FF
            else:
                # Same millisecond (or the clock stepped back): keep ordering with the counter,
                # borrowing the next millisecond when the 12-bit counter runs out.
                self._seq += 1
                if self._seq > _RAND_A_MAX:
                    self._last_ms += 1
                    self._seq = 0
            ms, seq = self._last_ms, self._seq
        rand_b = int.from_bytes(os.urandom(8), "big") & _RAND_B_MASK
        return _uuid7((ms & ((1 << 48) - 1)) << 12 | seq, rand_b)


_source = _UUID7Source()


def new_event_id() -> str:
    """Return a new UUIDv7 string; ids from one process sort in the order they were made."""
    return _source.next()


def derived_event_id(cause_id: str, *, role: str, event_type: str, key: str = "") -> str:
    """Return the id of the ``event_type`` event that ``role`` publishes because of ``cause_id``.

    The same arguments give the same id in every process, so a republish after a crash between
    publishing and acknowledging the cause carries the id of the first publish. ``role`` names
    the producer (``tool-gateway``); ``key`` tells apart several events of one type from one
    cause (each tool call of one LLM answer). The id is a UUIDv7 whose time and sequence are the
    cause's plus one, so it sorts right after its cause; its 62 random bits are a hash.
    """
    try:
        cause = uuid.UUID(cause_id)
    except ValueError:
        cause = None
    if cause is None or cause.version != 7 or cause.variant != uuid.RFC_4122:
        raise ValueError(
            f"event id {cause_id!r} is not a UUIDv7: an event derived from it needs the "
            "cause's time to stay time-ordered"
        )
    digest = hashlib.sha256(_DERIVATION)
    for part in (cause.hex, role, event_type, key):
        encoded = part.encode()
        # Length-prefixed, so no two different argument lists hash the same bytes.
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
    rand_b = int.from_bytes(digest.digest()[:8], "big") & _RAND_B_MASK
    counter = ((cause.int >> 80) << 12 | (cause.int >> 64) & _RAND_A_MAX) + 1
    return _uuid7(counter & _COUNTER_MASK, rand_b)
