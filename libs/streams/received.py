"""What a handler receives: one stream entry, as read by a consumer group."""

from __future__ import annotations

from typing import Any, NamedTuple

from events.envelope import Envelope


class Received(NamedTuple):
    """An event as a consumer group received it, with where it came from.

    ``attempt`` is 1 on the first read and grows with every handler start after it, also
    across processes (kept as the delivery count of the group's pending list; a reclaim that
    never reached a handler does not count). Immutable, and cheap to make: one per event.
    """

    envelope: Envelope[Any]
    stream: str
    partition: int
    entry_id: str
    attempt: int
    group: str
