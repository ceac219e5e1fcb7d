"""Acknowledgements buffered per stream key and sent in one pipelined round trip."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import redis.asyncio as aioredis


class AckBuffer:
    """Collects handled entry ids; ``flush`` acknowledges them all at once.

    Ids stay buffered when Redis is unreachable and go out with the next flush.
    """

    def __init__(self, group: str) -> None:
        self._group = group
        self._pending: defaultdict[str, list[str]] = defaultdict(list)
        self.ready = asyncio.Event()

    def add(self, key: str, entry_id: str) -> None:
        """Buffer ``entry_id`` of ``key`` for acknowledgement."""
        self._pending[key].append(entry_id)
        self.ready.set()

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._pending.values())

    async def flush(self, redis: aioredis.Redis) -> int:
        """Acknowledge every buffered id in one pipeline; return how many were sent."""
        if not self._pending:
            self.ready.clear()
            return 0
        batch, self._pending = self._pending, defaultdict(list)
        self.ready.clear()
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for key, ids in batch.items():
                    pipe.xack(key, self._group, *ids)
                await pipe.execute()
        except BaseException:
            for key, ids in batch.items():
                self._pending[key][:0] = ids
            self.ready.set()
            raise
        return sum(len(ids) for ids in batch.values())
