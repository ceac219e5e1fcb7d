"""Pre-filling streams with the same realistic events, each in its contender's own format.

Every contender gets ``inbox.message.received`` text messages shaped like the documented
example, each with a unique event id, provider message id and trace context. atende's entries
are written by its ``Publisher``; FastStream's by its broker (the format its subscriber
expects); the raw loop's are atende's fields written with a plain XADD.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis
from faststream.redis import RedisBroker

from events.envelope import Envelope
from events.examples import EXAMPLE_TENANT, example_envelope
from events.registry import encode
from events.streams import INBOX_MESSAGE_RECEIVED
from libs.keys import KeySpace
from libs.streams import Publisher
from libs.streams.codec import entry_fields

_CHUNK = 1_000
_CONVERSATIONS = 1_000


def inbox_envelopes(count: int) -> Iterator[list[Envelope[Any]]]:
    """Yield ``count`` unique inbox events in chunks, spread over many conversations."""
    template = example_envelope(INBOX_MESSAGE_RECEIVED, 1).payload
    for start in range(0, count, _CHUNK):
        chunk = []
        for n in range(start, min(start + _CHUNK, count)):
            payload = template.model_copy(
                update={
                    "provider_message_id": f"wamid.bench{n:012d}",
                    "seq": n // _CONVERSATIONS + 1,
                }
            )
            chunk.append(
                Envelope.new(
                    payload,
                    tenant_id=EXAMPLE_TENANT,
                    conversation_id=f"wa-main:55119{n % _CONVERSATIONS:08d}",
                    traceparent=f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
                )
            )
        yield chunk


async def fill_atende(redis: aioredis.Redis, keys: KeySpace, partitions: int, count: int) -> None:
    """Publish ``count`` events with atende's publisher over ``partitions`` partitions."""
    publisher = Publisher(redis, keys, partitions=partitions)
    for chunk in inbox_envelopes(count):
        await publisher.publish_many(chunk)


async def fill_faststream(url: str, key: str, count: int) -> None:
    """Publish ``count`` JSON bodies to ``key`` through FastStream's broker, pipelined."""
    broker = RedisBroker(url, logger=None)  # None: its logging off
    redis = await broker.connect()
    try:
        for chunk in inbox_envelopes(count):
            async with redis.pipeline(transaction=False) as pipe:
                for envelope in chunk:
                    await broker.publish(
                        encode(envelope),
                        stream=key,
                        headers={"content-type": "application/json"},
                        pipeline=pipe,
                    )
                await pipe.execute()
    finally:
        await broker.stop()


async def fill_raw(redis: aioredis.Redis, key: str, count: int) -> None:
    """XADD ``count`` entries with atende's fields to one stream, pipelined."""
    for chunk in inbox_envelopes(count):
        async with redis.pipeline(transaction=False) as pipe:
            for envelope in chunk:
                pipe.xadd(key, entry_fields(envelope))  # type: ignore[arg-type]
            await pipe.execute()
