"""Acting on entries this consumer still owns, checked against the group's pending list.

Another consumer may have reclaimed an entry that we still hold locally: we were frozen, or a
long handler outlived ``claim_idle_ms``. XCLAIM alone cannot tell, and with a min-idle of 0 it
would take the entry back from its new owner, so both would run it. The script below looks
each entry's owner up in the pending list and acts only on entries that are still ours, in
one atomic step.

The pending list's delivery count is the entry's attempt counter, and it counts handler
starts: reclaims claim with JUSTID (no increment) and a handler start sets the count one
higher with RETRYCOUNT. Only the first read (XREADGROUP) counts before the handler starts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Literal

import redis.asyncio as aioredis

from libs.streams.partitions import StreamPartition

# KEYS[1]: the stream. ARGV: group, consumer, mode, idle (ms), then entry ids.
# mode 'start': the handler starts now, the count grows by one; 'touch': reset the idle time
# (keep-alive); 'release': set the idle time to ARGV[4] so another consumer reclaims it now.
# Replies per id: its delivery count after the step, or 0 when the entry is not ours (any
# more): another consumer owns it, or it was acknowledged.
_ACT_ON_OWNED = """
local group, me, mode, idle = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local replies = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local row = redis.call('XPENDING', KEYS[1], group, id, id, 1)[1]
  if row == nil or row[2] ~= me then
    replies[#replies + 1] = 0
  else
    local count = row[4]
    if mode == 'start' then count = count + 1 end
    redis.call('XCLAIM', KEYS[1], group, me, 0, id, 'IDLE', idle, 'RETRYCOUNT', count, 'JUSTID')
    replies[#replies + 1] = count
  end
end
return replies
"""

Mode = Literal["start", "touch", "release"]
Held = tuple[StreamPartition, str]


class OwnedEntries:
    """Starts, keeps alive and releases entries of one consumer, never someone else's."""

    def __init__(self, redis: aioredis.Redis, group: str, consumer: str) -> None:
        self._group = group
        self._consumer = consumer
        self._script = redis.register_script(_ACT_ON_OWNED)

    async def start(self, where: StreamPartition, entry_id: str) -> int:
        """Count a handler start of ``entry_id``; return its attempt, or 0 when not ours."""
        counts = await self._act(where.key, "start", 0, [entry_id])
        return counts[0]

    async def confirm(self, where: StreamPartition, entry_id: str) -> int:
        """Reset the idle time of ``entry_id``; return its attempt, or 0 when not ours."""
        counts = await self._act(where.key, "touch", 0, [entry_id])
        return counts[0]

    async def touch(self, entries: Iterable[Held]) -> list[Held]:
        """Reset the idle time of ``entries`` so nobody reclaims them; return those lost."""
        return await self._each_key(entries, "touch", 0)

    async def release(self, entries: Iterable[Held], idle_ms: int) -> None:
        """Mark ``entries`` idle for ``idle_ms`` so another consumer reclaims them at once."""
        await self._each_key(entries, "release", idle_ms)

    async def _each_key(self, entries: Iterable[Held], mode: Mode, idle_ms: int) -> list[Held]:
        by_key: defaultdict[str, list[Held]] = defaultdict(list)
        for held in entries:
            by_key[held[0].key].append(held)
        lost: list[Held] = []
        for key, held_here in by_key.items():
            counts = await self._act(key, mode, idle_ms, [entry_id for _, entry_id in held_here])
            lost.extend(held for held, count in zip(held_here, counts, strict=True) if not count)
        return lost

    async def _act(self, key: str, mode: Mode, idle_ms: int, entry_ids: list[str]) -> list[int]:
        replies = await self._script(
            keys=[key], args=[self._group, self._consumer, mode, idle_ms, *entry_ids]
        )
        return [int(reply) for reply in replies]
