"""New entries for a consumer: one blocking read over all its partitions, on its own socket.

One XREADGROUP takes every partition key of the consumer, so a process holds one blocking
connection per consumer however many partitions there are, and that connection is not one
of the command pool's (acknowledgements and appends never wait behind a blocked read).
"""

from __future__ import annotations

import math

import redis.asyncio as aioredis

from libs.redis_client import blocking_client
from libs.streams.partitions import StreamPartition

ReadResponse = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None

# Entries one read may return over all keys, as a multiple of the batch size: COUNT applies
# per key, so with many partitions a read of batch_size each could bring in thousands.
_ENTRIES_PER_READ_IN_BATCHES = 4


# Per partition that had any, the new entries read (id and fields, as Redis sent them).
ReadBatch = list[tuple[StreamPartition, list[tuple[bytes, dict[bytes, bytes]]]]]


class PartitionReader:
    """Reads new entries of ``partitions`` for one consumer of ``group``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        partitions: list[StreamPartition],
        *,
        group: str,
        consumer: str,
        batch_size: int,
        block_ms: int,
    ) -> None:
        self._client = blocking_client(redis)
        self._by_key = {where.key.encode(): where for where in partitions}
        self._streams = {where.key: ">" for where in partitions}
        self._group = group
        self._consumer = consumer
        budget = batch_size * _ENTRIES_PER_READ_IN_BATCHES
        self._count = max(1, min(batch_size, math.ceil(budget / len(partitions))))
        self._block_ms = block_ms

    async def read(self) -> ReadBatch:
        """Wait up to block_ms for new entries on any partition; return what came."""
        response: ReadResponse = await self._client.xreadgroup(  # type: ignore[assignment]
            self._group,
            self._consumer,
            self._streams,  # type: ignore[arg-type]
            count=self._count,
            block=self._block_ms,
        )
        return [(self._by_key[key], entries) for key, entries in response or ()]

    async def aclose(self) -> None:
        """Close the reader's own connection."""
        await self._client.aclose()
