"""Operations on a group's pending entries: retries, reclaiming the dead's, keeping our own."""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from libs.streams.partitions import StreamPartition

RawEntry = tuple[bytes, dict[bytes, bytes] | None]

# Deleting a consumer drops its pending entries, so do it only when it has none, atomically.
_LEAVE_IF_IDLE = """
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #mine == 0 then return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return -1
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """An entry this consumer now owns, with the delivery it is at."""

    where: StreamPartition
    entry_id: str
    fields: dict[bytes, bytes]
    attempt: int


@dataclass(order=True, slots=True)
class _Due:
    due_at: float
    order: int
    where: StreamPartition = field(compare=False)
    entry_id: str = field(compare=False)
    attempt: int = field(compare=False)
    delay_ms: int = field(compare=False)


class RetrySchedule:
    """Failed entries waiting for their backoff; they stay pending in Redis meanwhile."""

    def __init__(self) -> None:
        self._heap: list[_Due] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(
        self, where: StreamPartition, entry_id: str, attempt: int, due_at: float, delay_ms: int
    ) -> None:
        """Retry ``entry_id`` (whose delivery ``attempt`` failed) at ``due_at`` (loop time)."""
        heapq.heappush(
            self._heap, _Due(due_at, next(self._order), where, entry_id, attempt, delay_ms)
        )

    def next_due_at(self) -> float | None:
        """Loop time of the earliest retry, if any."""
        return self._heap[0].due_at if self._heap else None

    def pop_due(self, now: float, limit: int) -> list[_Due]:
        """Remove and return up to ``limit`` retries due at ``now``."""
        due: list[_Due] = []
        while self._heap and self._heap[0].due_at <= now and len(due) < limit:
            due.append(heapq.heappop(self._heap))
        return due

    def drain(self) -> list[tuple[StreamPartition, str]]:
        """Remove every scheduled retry (on shutdown, to hand them back)."""
        entries = [(item.where, item.entry_id) for item in self._heap]
        self._heap.clear()
        return entries


class PendingEntries:
    """XCLAIM/XAUTOCLAIM/XPENDING for one consumer of one group."""

    def __init__(self, redis: aioredis.Redis, group: str, consumer: str) -> None:
        self._redis = redis
        self._group = group
        self._consumer = consumer
        # XAUTOCLAIM examines at most ten times COUNT entries per call; continuing from the
        # cursor it returns (instead of from the start) lets each round look further into the
        # pending list, past entries that are busy, until it wraps to 0-0.
        self._cursors: dict[str, bytes | str] = {}

    async def claim_retries(self, due: list[_Due]) -> list[Claimed]:
        """Take back due retries; an entry someone else took or that was trimmed is skipped.

        The min-idle guard is half the backoff: our entry has been idle at least the whole
        backoff, while one that another consumer reclaimed meanwhile has not.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in due:
                pipe.xclaim(
                    item.where.key, self._group, self._consumer, item.delay_ms // 2, [item.entry_id]
                )
            results: list[list[RawEntry]] = await pipe.execute()
        claimed = []
        for item, entries in zip(due, results, strict=True):
            for entry_id, fields in entries:
                if fields is not None:
                    claimed.append(Claimed(item.where, _text(entry_id), fields, item.attempt + 1))
        return claimed

    async def reclaim_idle(
        self, where: StreamPartition, min_idle_ms: int, count: int
    ) -> list[Claimed]:
        """Claim up to ``count`` entries idle longer than ``min_idle_ms`` (their owner is gone).

        Redis counts the claim as a delivery; XPENDING tells how many this entry has had.
        """
        start = self._cursors.get(where.key, "0-0")
        cursor, entries, _deleted = await self._redis.xautoclaim(
            where.key, self._group, self._consumer, min_idle_ms, start, count=count
        )
        self._cursors[where.key] = cursor
        live = [(_text(entry_id), fields) for entry_id, fields in entries if fields is not None]
        if not live:
            return []
        attempts = await self._attempts(where, [entry_id for entry_id, _ in live])
        return [
            Claimed(where, entry_id, fields, attempts.get(entry_id, 1)) for entry_id, fields in live
        ]

    async def keep_alive(
        self, entries: Iterable[tuple[StreamPartition, str]], min_idle_ms: int
    ) -> None:
        """Reset the idle time of long-running entries so nobody reclaims them from us.

        JUSTID claims do not count as deliveries.
        """
        by_key = _group_by_key(entries)
        if not by_key:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, ids in by_key.items():
                pipe.xclaim(key, self._group, self._consumer, min_idle_ms, ids, justid=True)
            await pipe.execute()

    async def hand_back(self, entries: Iterable[tuple[StreamPartition, str]], idle_ms: int) -> None:
        """Mark entries we will not finish as idle for ``idle_ms`` so others reclaim them now."""
        by_key = _group_by_key(entries)
        if not by_key:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, ids in by_key.items():
                pipe.xclaim(key, self._group, self._consumer, 0, ids, idle=idle_ms, justid=True)
            await pipe.execute()

    async def leave_if_idle(self, partitions: Iterable[StreamPartition]) -> None:
        """Remove this consumer from the group on every partition where it owns nothing."""
        for where in partitions:
            await self._redis.eval(_LEAVE_IF_IDLE, 1, where.key, self._group, self._consumer)

    async def _attempts(self, where: StreamPartition, entry_ids: list[str]) -> dict[str, int]:
        # One exact lookup per entry: a range over several would also list the entries in
        # between, and a COUNT that cuts it short leaves some without their delivery count.
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xpending_range(where.key, self._group, min=entry_id, max=entry_id, count=1)
            results: list[list[dict[str, Any]]] = await pipe.execute()
        return {
            _text(row["message_id"]): int(row["times_delivered"])
            for rows in results
            for row in rows
        }


def _group_by_key(
    entries: Iterable[tuple[StreamPartition, str]],
) -> dict[str, list[bytes | str | int | memoryview]]:
    by_key: defaultdict[str, list[bytes | str | int | memoryview]] = defaultdict(list)
    for where, entry_id in entries:
        by_key[where.key].append(entry_id)
    return dict(by_key)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
