"""The physical stream keys one consumer reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from libs.keys import KeySpace


@dataclass(frozen=True, slots=True)
class StreamPartition:
    """One partition of a logical stream and the keys that belong to it."""

    stream: str
    partition: int
    key: str
    dead_letter_key: str


def stream_partitions(
    keys: KeySpace, streams: Iterable[str], partitions: int
) -> list[StreamPartition]:
    """Every (stream, partition) pair, in a stable order."""
    return [
        StreamPartition(stream, p, keys.stream(stream, p), keys.dead_letters(stream, p))
        for stream in streams
        for p in range(partitions)
    ]
