"""Moving an entry that cannot be processed to its partition's dead-letter stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from libs.observability.metrics import DEAD_LETTERS
from libs.streams.partitions import StreamPartition
from libs.streams.received import Received
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


# KEYS: the origin stream and its dead-letter stream (same slot, so this is atomic on Redis
# Cluster too: the entry is never both lost and acknowledged). ARGV: group, consumer, entry
# id, maxlen, then the dead letter's fields and values. Only the entry's owner may give it up:
# one that lost it to a reclaim would otherwise dead-letter what another consumer is running.
_MOVE_IF_OWNED = """
local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)[1]
if row == nil or row[2] ~= ARGV[2] then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class DeadLetterMover:
    """Gives entries up for one group: moves them, counts them, logs them, runs the hook."""

    def __init__(
        self,
        redis: aioredis.Redis,
        group: str,
        maxlen: int,
        on_exhausted: ExhaustedHook | None = None,
    ) -> None:
        self._group = group
        self._maxlen = maxlen
        self._on_exhausted = on_exhausted
        self._script = redis.register_script(_MOVE_IF_OWNED)

    async def move(
        self,
        where: StreamPartition,
        letter: DeadLetter,
        original: dict[bytes, bytes],
        received: Received | None,
        error: BaseException,
    ) -> bool:
        """Dead-letter one entry we own; return whether it moved.

        When Redis refuses, the entry stays pending and comes back later; when another
        consumer has taken it over, it is theirs to finish.
        """
        flat = [item for pair in letter.fields(original).items() for item in pair]
        try:
            moved = await self._script(
                keys=[where.key, where.dead_letter_key],
                args=[letter.group, letter.consumer, letter.origin_id, self._maxlen, *flat],
            )
        except (RedisError, OSError) as exc:
            _log.error("cannot dead-letter entry now", entry_id=letter.origin_id, error=str(exc))
            return False
        if not moved:
            _log.warning(
                "entry taken over by another consumer; not dead-lettered here",
                entry_id=letter.origin_id,
                stream=where.stream,
            )
            return False
        DEAD_LETTERS.labels(where.stream, self._group).inc()
        _log.error(
            "entry dead-lettered",
            entry_id=letter.origin_id,
            stream=where.stream,
            attempts=letter.attempts,
            error=f"{letter.error_type}: {letter.error}",
        )
        if self._on_exhausted is not None and received is not None:
            try:
                await self._on_exhausted(received, error)
            except Exception:  # noqa: BLE001 - a failing hook must not undo the dead letter
                _log.exception("retries-exhausted hook failed", entry_id=letter.origin_id)
        return True
