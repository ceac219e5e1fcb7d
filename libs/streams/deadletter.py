"""Moving an entry that cannot be processed to its partition's dead-letter stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

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
