"""Lag, pending and length gauges per stream, group and partition."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from libs.observability.metrics import STREAM_LAG, STREAM_LENGTH, STREAM_PENDING
from libs.streams.partitions import StreamPartition

_log = structlog.get_logger("atende.streams")


class StreamStats:
    """Samples XINFO GROUPS and XLEN of a consumer's partitions every ``interval_s``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        partitions: list[StreamPartition],
        group: str,
        interval_s: float,
    ) -> None:
        self._redis = redis
        self._partitions = partitions
        self._group = group.encode()
        self._interval_s = interval_s

    async def run(self) -> None:
        """Sample until cancelled; a failed sample is logged and tried again next interval."""
        while True:
            try:
                await self.sample()
            except (RedisError, OSError) as exc:
                _log.debug("stream stats unavailable", error=str(exc))
            await asyncio.sleep(self._interval_s)

    async def sample(self) -> None:
        """Read every partition's group info and length once and update the gauges."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for where in self._partitions:
                pipe.xinfo_groups(where.key)
                pipe.xlen(where.key)
            results = await pipe.execute(raise_on_error=False)
        for index, where in enumerate(self._partitions):
            groups, length = results[2 * index], results[2 * index + 1]
            partition = str(where.partition)
            if not isinstance(length, ResponseError):
                STREAM_LENGTH.labels(where.stream, partition).set(length)
            if isinstance(groups, ResponseError):
                continue
            for info in groups:
                if info["name"] != self._group:
                    continue
                labels = (where.stream, self._group.decode(), partition)
                STREAM_PENDING.labels(*labels).set(info["pending"])
                # lag is nil when Redis cannot tell (e.g. after XDEL of undelivered entries).
                if info.get("lag") is not None:
                    STREAM_LAG.labels(*labels).set(info["lag"])
