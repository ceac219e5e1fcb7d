"""Free appointment slots from working hours and busy times: pure computation, no I/O.

Working hours are wall-clock times in the resource's time zone; slots are stepped in absolute
time from each window's opening, so on a daylight-saving day every slot lasts its real
duration and no slot starts at a wall time that does not exist.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAYS = 62
"""The longest date range one computation covers."""


@dataclass(frozen=True, slots=True)
class WorkingWindow:
    """One opening window on an ISO weekday (1 = Monday), in the resource's wall-clock time."""

    weekday: int
    opens_at: time
    closes_at: time


@dataclass(frozen=True, slots=True)
class Interval:
    """A span of absolute time, ``[starts_at, ends_at)``, with aware datetimes."""

    starts_at: datetime
    ends_at: datetime


class BusyTimes:
    """Booked and closed intervals, answering "does this span overlap any?" in log time."""

    def __init__(self, intervals: Iterable[Interval]) -> None:
        # In UTC: Python compares two datetimes of one zone by wall clock, which is wrong
        # around a daylight-saving change.
        ordered = sorted(
            (interval.starts_at.astimezone(UTC), interval.ends_at.astimezone(UTC))
            for interval in intervals
        )
        self._starts = [starts_at for starts_at, _ in ordered]
        # Latest end among the intervals starting at or before each index.
        self._max_ends: list[datetime] = []
        for _, ends_at in ordered:
            latest = self._max_ends[-1] if self._max_ends else ends_at
            self._max_ends.append(max(latest, ends_at))

    def overlaps(self, starts_at: datetime, ends_at: datetime) -> bool:
        """Whether ``[starts_at, ends_at)`` overlaps a busy interval."""
        before_end = bisect.bisect_left(self._starts, ends_at.astimezone(UTC))
        return before_end > 0 and self._max_ends[before_end - 1] > starts_at.astimezone(UTC)


def wall_time(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at wall-clock ``at`` in ``zone``, as an absolute (UTC) instant.

    A wall time skipped by a daylight-saving jump maps past the jump (02:30 on a spring-forward
    day becomes 03:30); a repeated one takes its first occurrence.
    """
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def opening_windows(day: date, windows: Sequence[WorkingWindow], zone: ZoneInfo) -> list[Interval]:
    """The absolute intervals ``windows`` open on ``day``, earliest first."""
    return sorted(
        (
            Interval(wall_time(day, window.opens_at, zone), wall_time(day, window.closes_at, zone))
            for window in windows
            if window.weekday == day.isoweekday()
        ),
        key=lambda interval: interval.starts_at,
    )


def within_working_hours(
    starts_at: datetime, ends_at: datetime, windows: Sequence[WorkingWindow], zone: ZoneInfo
) -> bool:
    """Whether ``[starts_at, ends_at)`` lies inside one opening window of its local day."""
    day = starts_at.astimezone(zone).date()
    starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    return any(
        opening.starts_at <= starts_at and ends_at <= opening.ends_at
        for opening in opening_windows(day, windows, zone)
    )


def free_slots(
    *,
    zone: ZoneInfo,
    first_day: date,
    last_day: date,
    windows: Sequence[WorkingWindow],
    busy: BusyTimes,
    duration: timedelta,
    step: timedelta,
    not_before: datetime,
    limit: int,
) -> list[Interval]:
    """Up to ``limit`` free slots of ``duration`` from ``first_day`` to ``last_day`` (local dates).

    Slots start every ``step`` from each window's opening, end by its closing, start no earlier
    than ``not_before`` and overlap nothing busy. Times are returned in ``zone``.
    """
    if step <= timedelta(0) or duration <= timedelta(0):
        raise ValueError("duration and step must be positive")
    if not 0 <= (last_day - first_day).days < MAX_DAYS:
        raise ValueError(f"the date range must run forwards and span at most {MAX_DAYS} days")
    slots: list[Interval] = []
    seen: set[datetime] = set()
    for starts_at in _candidates(zone, first_day, last_day, windows, duration, step):
        if len(slots) >= limit:
            break
        ends_at = starts_at + duration
        if starts_at < not_before or starts_at in seen or busy.overlaps(starts_at, ends_at):
            continue
        seen.add(starts_at)
        slots.append(Interval(starts_at.astimezone(zone), ends_at.astimezone(zone)))
    return slots


def _candidates(
    zone: ZoneInfo,
    first_day: date,
    last_day: date,
    windows: Sequence[WorkingWindow],
    duration: timedelta,
    step: timedelta,
) -> Iterator[datetime]:
    for offset in range((last_day - first_day).days + 1):
        for opening in opening_windows(first_day + timedelta(days=offset), windows, zone):
            # A window lasts at most a day (plus a daylight-saving hour): bounded by its length.
            starts_at = opening.starts_at
            while starts_at + duration <= opening.ends_at:
                yield starts_at
                starts_at += step
