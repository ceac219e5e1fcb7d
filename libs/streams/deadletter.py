"""Moving an entry that cannot be processed to its partition's dead-letter stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from libs.observability.metrics import DEAD_LETTERS
from libs.streams.delivery import Delivery
from libs.streams.partitions import StreamPartition
from libs.streams.retry import ExhaustedHook

_log = structlog.get_logger("atende.streams")

_MAX_ERROR_CHARS = 2_000

# Metadata fields added beside the entry's own fields; a redrive strips them again.
DEAD_LETTER_FIELDS = (
    "origin_stream",
    "origin_partition",
    "origin_id",
    "group",
    "consumer",
    "error_type",
    "error",
    "attempts",
    "dead_lettered_at",
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why and where from an entry was given up."""

    origin_stream: str
    origin_partition: int
    origin_id: str
    group: str
    consumer: str
    error_type: str
    error: str
    attempts: int

    @classmethod
    def of(
        cls,
        exc: BaseException,
        *,
        stream: str,
        partition: int,
        entry_id: str,
        group: str,
        consumer: str,
        attempts: int,
    ) -> DeadLetter:
        """Describe ``exc`` as the reason ``entry_id`` is given up."""
        return cls(
            origin_stream=stream,
            origin_partition=partition,
            origin_id=entry_id,
            group=group,
            consumer=consumer,
            error_type=type(exc).__name__,
            error=str(exc)[:_MAX_ERROR_CHARS] or type(exc).__name__,
            attempts=attempts,
        )

    def fields(self, original: dict[bytes, bytes]) -> dict[bytes | str, bytes | str | int]:
        """The dead-letter entry: the original fields plus this metadata."""
        fields: dict[bytes | str, bytes | str | int] = dict(original.items())
        fields.update(
            origin_stream=self.origin_stream,
            origin_partition=self.origin_partition,
            origin_id=self.origin_id,
            group=self.group,
            consumer=self.consumer,
            error_type=self.error_type,
            error=self.error,
            attempts=self.attempts,
            dead_lettered_at=datetime.now(UTC).isoformat(),
        )
        return fields


async def move_to_dead_letters(
    redis: aioredis.Redis,
    letter: DeadLetter,
    *,
    origin_key: str,
    dead_letter_key: str,
    original: dict[bytes, bytes],
    maxlen: int,
) -> None:
    """Append the dead letter and acknowledge the origin entry in one MULTI/EXEC.

    Both keys carry the partition's hash tag, so this is atomic on Redis Cluster too: the
    entry is never both lost and acknowledged.
    """
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(
            dead_letter_key,
            letter.fields(original),  # type: ignore[arg-type]
            maxlen=maxlen,
            approximate=True,
        )
        pipe.xack(origin_key, letter.group, letter.origin_id)
        await pipe.execute()


class DeadLetterMover:
    """Gives entries up for one group: moves them, counts them, logs them, runs the hook."""

    def __init__(
        self,
        redis: aioredis.Redis,
        group: str,
        maxlen: int,
        on_exhausted: ExhaustedHook | None = None,
    ) -> None:
        self._redis = redis
        self._group = group
        self._maxlen = maxlen
        self._on_exhausted = on_exhausted

    async def move(
        self,
        where: StreamPartition,
        letter: DeadLetter,
        original: dict[bytes, bytes],
        delivery: Delivery | None,
        error: BaseException,
    ) -> None:
        """Dead-letter one entry; when Redis refuses, it stays pending and comes back later."""
        try:
            await move_to_dead_letters(
                self._redis,
                letter,
                origin_key=where.key,
                dead_letter_key=where.dead_letter_key,
                original=original,
                maxlen=self._maxlen,
            )
        except (RedisError, OSError) as exc:
            _log.error("cannot dead-letter entry now", entry_id=letter.origin_id, error=str(exc))
            return
        DEAD_LETTERS.labels(where.stream, self._group).inc()
        _log.error(
            "entry dead-lettered",
            entry_id=letter.origin_id,
            stream=where.stream,
            attempts=letter.attempts,
            error=f"{letter.error_type}: {letter.error}",
        )
        if self._on_exhausted is not None and delivery is not None:
            try:
                await self._on_exhausted(delivery, error)
            except Exception:  # noqa: BLE001 - a failing hook must not undo the dead letter
                _log.exception("retries-exhausted hook failed", entry_id=letter.origin_id)
