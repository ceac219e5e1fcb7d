"""Consumer groups: created idempotently, recreated when they vanish."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from libs.observability.metrics import CONSUMER_GROUPS_HEALED
from libs.streams.partitions import StreamPartition

_log = structlog.get_logger("atende.streams")


def is_nogroup(exc: ResponseError) -> bool:
    """Whether Redis said the stream or the group does not exist (e.g. after a restart)."""
    return str(exc).startswith("NOGROUP")


async def ensure_groups(
    redis: aioredis.Redis, keys: Iterable[str], group: str, start_id: str = "0"
) -> int:
    """Create ``group`` on every stream key (and the stream if missing); return how many new.

    Existing groups are left as they are (BUSYGROUP is the normal answer on a restart).
    """
    created = 0
    async with redis.pipeline(transaction=False) as pipe:
        key_list = list(keys)
        for key in key_list:
            pipe.xgroup_create(key, group, id=start_id, mkstream=True)
        results = await pipe.execute(raise_on_error=False)
    for key, result in zip(key_list, results, strict=True):
        if isinstance(result, ResponseError):
            if str(result).startswith("BUSYGROUP"):
                continue
            raise ResponseError(f"cannot create group {group!r} on {key!r}: {result}")
        created += 1
    return created


async def groups_present(redis: aioredis.Redis, keys: Iterable[str], group: str) -> list[str]:
    """Return the stream keys on which ``group`` is missing."""
    key_list = list(keys)
    async with redis.pipeline(transaction=False) as pipe:
        for key in key_list:
            pipe.xinfo_groups(key)
        results = await pipe.execute(raise_on_error=False)
    missing = []
    for key, result in zip(key_list, results, strict=True):
        names = set() if isinstance(result, ResponseError) else {g["name"] for g in result}
        if group.encode() not in names:
            missing.append(key)
    return missing


async def heal_groups(
    redis: aioredis.Redis, partitions: Iterable[StreamPartition], group: str
) -> int:
    """Heal NOGROUP: recreate ``group`` where it vanished; return on how many partitions.

    The stream or group vanished (Redis restarted without persistence, or someone deleted
    it); recreating it from ``0`` loses nothing that was appended since.
    """
    created = 0
    for where in partitions:
        if await ensure_groups(redis, [where.key], group, "0"):
            CONSUMER_GROUPS_HEALED.labels(where.stream, group).inc()
            _log.warning("consumer group recreated", key=where.key, group=group)
            created += 1
    return created
