"""Consumer groups: created idempotently, recreated when they vanish."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from libs.observability.metrics import CONSUMER_GROUPS_HEALED

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


async def recreate_group(redis: aioredis.Redis, stream: str, key: str, group: str) -> bool:
    """Heal NOGROUP: recreate ``group`` on ``key`` from the start of what the stream now holds.

    The stream or group vanished (Redis restarted without persistence, or someone deleted
    it); reading from ``0`` loses nothing that was appended since. Return whether it worked.
    """
    try:
        await ensure_groups(redis, [key], group, "0")
    except (RedisError, OSError) as exc:
        _log.warning("cannot recreate group", key=key, error=str(exc))
        return False
    CONSUMER_GROUPS_HEALED.labels(stream, group).inc()
    _log.warning("consumer group recreated", key=key, group=group)
    return True
