"""Reading a peer's ``Retry-After``: how long it asked us to wait before trying again."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay seconds or an HTTP date), if valid."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
        if not seconds >= 0:  # a negative or NaN delay is no hint at all (RFC 9110)
            return None
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)  # a date in the past: try now
