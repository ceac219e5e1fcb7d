"""New entries for a consumer: a few blocking reads over all its partitions, on own sockets.

One XREADGROUP takes several partition keys, so a consumer needs at most
``MAX_READERS_PER_CONSUMER`` blocking connections however many partitions there are, and
those connections are not the command pool's: acknowledgements and appends never wait behind
a blocked read. More than one reader keeps a read in flight while the workers handle the
previous batch, which several partitions with traffic need to keep the workers busy.
"""

from __future__ import annotations

import math

import redis.asyncio as aioredis

from libs.streams.partitions import StreamPartition

ReadResponse = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None

MAX_READERS_PER_CONSUMER = 4


# Per partition that had any, the new entries read (id and fields, as Redis sent them).
ReadBatch = list[tuple[StreamPartition, list[tuple[bytes, dict[bytes, bytes]]]]]


def split_among_readers(partitions: list[StreamPartition]) -> list[list[StreamPartition]]:
    """Deal ``partitions`` out to at most ``MAX_READERS_PER_CONSUMER`` readers."""
    readers = min(len(partitions), MAX_READERS_PER_CONSUMER)
    return [partitions[n::readers] for n in range(readers)]


class PartitionReader:
    """Reads new entries of ``partitions`` for one consumer of ``group``, on ``client``."""

    def __init__(
        self,
        client: aioredis.Redis,
        partitions: list[StreamPartition],
        *,
        group: str,
        consumer: str,
        batch_size: int,
        block_ms: int,
    ) -> None:
        self._client = client
        self.streams = sorted({where.stream for where in partitions})
        self._by_key = {where.key.encode(): where for where in partitions}
        self._streams = {where.key: ">" for where in partitions}
        self._group = group
        self._consumer = consumer
        # COUNT applies per key: a read over many keys stays near one batch in all.
        self._count = max(1, math.ceil(batch_size / len(partitions)))
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
