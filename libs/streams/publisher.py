"""Appending events to their partitioned streams."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from events.envelope import Envelope
from events.partitions import partition_for
from libs.keys import KeySpace
from libs.observability.metrics import EVENTS_PUBLISHED
from libs.observability.tracing import current_trace_headers
from libs.streams.codec import entry_fields


class Publisher:
    """XADDs envelopes to the partition of their conversation.

    Appends never trim: an entry leaves its stream only once every group has acknowledged or
    dead-lettered it (``libs.streams.trimming``). The current span's trace context is written
    into each envelope, so the consumer's span continues the producer's trace.
    """

    def __init__(self, redis: aioredis.Redis, keys: KeySpace, *, partitions: int) -> None:
        self._redis = redis
        self._keys = keys
        self.partitions = partitions

    def stream_key(self, envelope: Envelope[Any]) -> str:
        """Physical stream that ``envelope`` goes to."""
        partition = partition_for(envelope.tenant_id, envelope.conversation_id, self.partitions)
        return self._keys.stream(envelope.stream, partition)

    async def publish(self, envelope: Envelope[Any]) -> str:
        """Append one event; return its stream entry id."""
        envelope = _with_current_trace(envelope)
        entry_id = await self._redis.xadd(
            self.stream_key(envelope),
            entry_fields(envelope),  # type: ignore[arg-type]
        )
        EVENTS_PUBLISHED.labels(envelope.stream).inc()
        return _text(entry_id)

    async def publish_many(self, envelopes: Sequence[Envelope[Any]]) -> list[str]:
        """Append several events in one pipelined round trip; return their entry ids."""
        if not envelopes:
            return []
        traced = [_with_current_trace(envelope) for envelope in envelopes]
        async with self._redis.pipeline(transaction=False) as pipe:
            for envelope in traced:
                pipe.xadd(
                    self.stream_key(envelope),
                    entry_fields(envelope),  # type: ignore[arg-type]
                )
            entry_ids = await pipe.execute()
        for envelope in traced:
            EVENTS_PUBLISHED.labels(envelope.stream).inc()
        return [_text(entry_id) for entry_id in entry_ids]


def _with_current_trace(envelope: Envelope[Any]) -> Envelope[Any]:
    headers = current_trace_headers()
    if headers is None:
        return envelope
    return envelope.with_trace(*headers)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
