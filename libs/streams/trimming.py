"""Trimming a stream by its groups' progress, never past an entry some group still needs.

An entry leaves its stream once every group has acknowledged it or dead-lettered it (the
dead-letter move acknowledges). For each group the first entry it still needs is its oldest
pending entry, or, with nothing pending, its last-delivered id (kept, though acknowledged:
no arithmetic on ids); the stream is trimmed below the smallest of these (``XTRIM MINID``).
A stream without groups is never trimmed: nobody has said what they still need. Capacity is
enforced where entries come in (the ingress refuses past ``stream_capacity``), not by dropping
what was accepted.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from libs.observability.metrics import STREAM_TRIMMED
from libs.streams.partitions import StreamPartition

# One atomic step, so a group's progress cannot move between reading it and trimming by it.
# '~' trims whole radix-tree nodes only, never below the given id: cheap, and still safe.
_TRIM_BY_PROGRESS = """
local function parts(id)
  local dash = string.find(id, '-', 1, true)
  return string.sub(id, 1, dash - 1), string.sub(id, dash + 1)
end
-- Ids compared as text, part by part (shorter digits first): no arithmetic on 64-bit parts,
-- which Lua's doubles would round.
local function before(a, b)
  local ams, aseq = parts(a)
  local bms, bseq = parts(b)
  if ams ~= bms then
    return #ams < #bms or (#ams == #bms and ams < bms)
  end
  return #aseq < #bseq or (#aseq == #bseq and aseq < bseq)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local floor = nil
for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #row, 2 do info[row[i]] = row[i + 1] end
  -- The oldest pending entry, or the last delivered one: MINID keeps the floor itself, so
  -- at most one acknowledged entry per group stays, and nothing unread goes.
  local needed = info['last-delivered-id']
  if info['pending'] > 0 then
    needed = redis.call('XPENDING', KEYS[1], info['name'])[2]
  end
  if floor == nil or before(needed, floor) then floor = needed end
end
if floor == nil then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', floor)
"""


class StreamTrimmer:
    """Trims partitions to what their groups still need; safe to run from every replica."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._script = redis.register_script(_TRIM_BY_PROGRESS)

    async def trim(self, partitions: Iterable[StreamPartition]) -> int:
        """Trim every partition once; return how many entries were removed."""
        removed = 0
        for where in partitions:
            count = int(await self._script(keys=[where.key]))
            if count:
                STREAM_TRIMMED.labels(where.stream).inc(count)
                removed += count
        return removed
