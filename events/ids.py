"""Time-ordered event ids (UUIDv7, RFC 9562) with a monotonic sequence inside one millisecond."""

from __future__ import annotations

import os
import threading
import time

_RAND_A_MAX = 0xFFF


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
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand_b
        # The canonical 8-4-4-4-12 form, written directly: a third of going through uuid.UUID.
        digits = f"{value:032x}"
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


_source = _UUID7Source()


def new_event_id() -> str:
    """Return a new UUIDv7 string; ids from one process sort in the order they were made."""
    return _source.next()
