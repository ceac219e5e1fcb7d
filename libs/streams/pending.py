"""A group's pending entries: retries waiting here, reclaiming the dead's, pruning the dead."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog

from libs.observability.metrics import STREAM_CONSUMERS_PRUNED, STREAM_ENTRIES_LOST
from libs.streams.partitions import StreamPartition

_log = structlog.get_logger("atende.streams")

# Deleting a consumer drops its pending entries, so do it only when it has none, atomically.
_LEAVE_IF_IDLE = """
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #mine == 0 then return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return -1
"""

# Consumers of dead processes stay in the group forever and make it (and the metrics built on
# it) lie about who is consuming. Remove those that own nothing and have not read for ARGV[3]
# ms; checked and deleted in one step, so an entry claimed meanwhile is never dropped. A live
# consumer reads every block_ms, which resets its idle time; one removed by mistake (frozen
# longer than the limit) is recreated by its next read.
_PRUNE_IDLE = """
local pruned = {}
for _, row in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #row, 2 do info[row[i]] = row[i + 1] end
  if info['name'] ~= ARGV[2] and info['pending'] == 0 and info['idle'] > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    pruned[#pruned + 1] = info['name']
  end
end
return pruned
"""


# XAUTOCLAIM with JUSTID, which does not count the claim as a delivery (a claim is not a
# handler start), then the claimed entries' fields. KEYS[1]: the stream; ARGV: group, consumer,
# min idle (ms), cursor, count. Replies the next cursor, the claimed entries, and the ids that
# were pending but are gone from the stream (Redis drops those from the pending list).
_RECLAIM = """
local found = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5], 'JUSTID')
local entries = {}
for _, id in ipairs(found[2]) do
  entries[#entries + 1] = redis.call('XRANGE', KEYS[1], id, id)[1]
end
return {found[1], entries, found[3]}
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """An entry this consumer now owns, reclaimed from one that stopped reading it."""

    where: StreamPartition
    entry_id: str
    fields: dict[bytes, bytes]


@dataclass(order=True, slots=True)
class DueRetry:
    """A failed entry waiting for its backoff; it stays pending (and ours) meanwhile."""

    due_at: float
    order: int
    where: StreamPartition = field(compare=False)
    entry_id: str = field(compare=False)
    fields: dict[bytes, bytes] = field(compare=False)


class RetrySchedule:
    """Failed entries waiting for their backoff, earliest first."""

    def __init__(self) -> None:
        self._heap: list[DueRetry] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(
        self, where: StreamPartition, entry_id: str, fields: dict[bytes, bytes], due_at: float
    ) -> None:
        """Retry ``entry_id`` at ``due_at`` (loop time)."""
        heapq.heappush(self._heap, DueRetry(due_at, next(self._order), where, entry_id, fields))

    def held(self) -> list[tuple[StreamPartition, str]]:
        """Every entry waiting here (to keep them alive)."""
        return [(item.where, item.entry_id) for item in self._heap]

    def forget(self, lost: set[tuple[StreamPartition, str]]) -> None:
        """Drop entries another consumer has taken over."""
        self._heap = [item for item in self._heap if (item.where, item.entry_id) not in lost]
        heapq.heapify(self._heap)

    def next_due_at(self) -> float | None:
        """Loop time of the earliest retry, if any."""
        return self._heap[0].due_at if self._heap else None

    def pop_due(self, now: float) -> list[DueRetry]:
        """Remove and return every retry due at ``now``."""
        due: list[DueRetry] = []
        while self._heap and self._heap[0].due_at <= now:
            due.append(heapq.heappop(self._heap))
        return due

    def drain(self) -> list[tuple[StreamPartition, str]]:
        """Remove every scheduled retry (on shutdown, to hand them back)."""
        entries = self.held()
        self._heap.clear()
        return entries


class PendingEntries:
    """Reclaiming and housekeeping on one group's pending lists, for one consumer."""

    def __init__(self, redis: aioredis.Redis, group: str, consumer: str) -> None:
        self._redis = redis
        self._group = group
        self._consumer = consumer
        self._prune = redis.register_script(_PRUNE_IDLE)
        self._leave = redis.register_script(_LEAVE_IF_IDLE)
        self._reclaim = redis.register_script(_RECLAIM)
        # XAUTOCLAIM examines at most ten times COUNT entries per call; continuing from the
        # cursor it returns (instead of from the start) lets each round look further into the
        # pending list, past entries that are busy, until it wraps to 0-0.
        self._cursors: dict[str, bytes | str] = {}

    async def reclaim_idle(
        self, where: StreamPartition, min_idle_ms: int, count: int
    ) -> list[Claimed]:
        """Claim up to ``count`` entries idle longer than ``min_idle_ms`` (their owner is gone).

        The claim does not count as a delivery; the handler's start will (see
        ``libs.streams.ownership``). An entry whose data is gone from the stream cannot be
        handled: it is counted and logged with its id.
        """
        start = self._cursors.get(where.key, "0-0")
        cursor, entries, deleted = await self._reclaim(
            keys=[where.key], args=[self._group, self._consumer, min_idle_ms, start, count]
        )
        self._cursors[where.key] = cursor
        if deleted:
            self._lost(where, [_text(entry_id) for entry_id in deleted])
        return [Claimed(where, _text(entry_id), _pairs(flat)) for entry_id, flat in entries or ()]

    async def prune_idle_consumers(
        self, partitions: Iterable[StreamPartition], idle_ms: int
    ) -> int:
        """Remove other consumers that own nothing and have not read for ``idle_ms``."""
        total = 0
        for where in partitions:
            pruned = await self._prune(
                keys=[where.key], args=[self._group, self._consumer, idle_ms]
            )
            if pruned:
                names = [_text(name) for name in pruned]
                STREAM_CONSUMERS_PRUNED.labels(where.stream, self._group).inc(len(names))
                _log.info("idle consumers removed", key=where.key, consumers=names)
                total += len(names)
        return total

    async def leave_if_idle(self, partitions: Iterable[StreamPartition]) -> None:
        """Remove this consumer from the group on every partition where it owns nothing."""
        for where in partitions:
            await self._leave(keys=[where.key], args=[self._group, self._consumer])

    def _lost(self, where: StreamPartition, entry_ids: list[str]) -> None:
        # Trimming waits for every group, so this means someone deleted entries by hand (XDEL,
        # XTRIM) or Redis lost them; say which, so they can be found in the archive.
        STREAM_ENTRIES_LOST.labels(where.stream, self._group).inc(len(entry_ids))
        _log.error(
            "pending entries gone from the stream",
            key=where.key,
            group=self._group,
            entry_ids=entry_ids,
        )


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
