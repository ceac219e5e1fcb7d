"""The partition count a namespace's data was written with: recorded in Redis, checked at start.

A conversation's partition is a hash over the partition count P (``events.partitions``), and
every key about it (``seq`` counter, dedup claims, mailbox, lease) carries that partition's hash
tag. A process started with another P looks for those keys in another partition: a retried
webhook is appended again, with ``seq`` starting over at 1. So the first process to start
records its P under the namespace, and every process that reads or writes streams refuses to
start with a different one.
"""

from __future__ import annotations

import redis.asyncio as aioredis
import structlog

from libs.errors import ConfigurationError
from libs.keys import KeySpace

_log = structlog.get_logger(__name__)
_RECORD_ATTEMPTS = 3


class PartitionCountChanged(ConfigurationError):
    """The process's partition count is not the one the namespace's data was written with."""


async def check_partition_count(redis: aioredis.Redis, keys: KeySpace, partitions: int) -> None:
    """Record ``partitions`` for the namespace if none is recorded; refuse any other count.

    Raises ``PartitionCountChanged`` with a sentence naming both counts and what to do.
    """
    key = keys.partition_count()
    recorded: bytes | str | None = None
    for _ in range(_RECORD_ATTEMPTS):
        # SET NX: of processes starting together, exactly one records; the others compare.
        if await redis.set(key, partitions, nx=True):
            _log.info("partition count recorded", namespace=keys.namespace, partitions=partitions)
            return
        recorded = await redis.get(key)
        if recorded is not None:  # None: deleted since the SET, so try to record again
            break
    if recorded is None:
        raise PartitionCountChanged(
            f"the partition count under {key!r} keeps disappearing; is something deleting keys?"
        )
    if _as_int(recorded) == partitions:
        return
    where = f"Redis at {_address(redis)} (namespace '{keys.namespace}')"
    written = _text(recorded)
    raise PartitionCountChanged(
        f"{where} holds data written with ATENDE_STREAM_PARTITIONS={written} but this process "
        f"is set to {partitions}: start it with ATENDE_STREAM_PARTITIONS={written}, or move the "
        "data to the new count first (not supported yet)"
    )


def _as_int(raw: bytes | str) -> int | None:
    try:
        return int(raw)
    except ValueError:
        return None


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def _address(redis: aioredis.Redis) -> str:
    """host:port/db (or the socket's path) of the client, without its password."""
    kwargs = redis.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    return f"{where}/{kwargs.get('db', 0)}"
