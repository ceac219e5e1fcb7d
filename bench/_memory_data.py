"""Synthetic, clustered embeddings for the memory benchmark, and loading them with COPY.

Uniform noise in 384 dimensions has no near neighbours (every pair is about equally far), so
recall on it says little. Here each vector is a cluster centre plus a smaller random offset,
normalised: queries drawn the same way have true neighbours inside their cluster, as texts
on one topic do. Pure Python with a fixed seed, so every run loads the same rows.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from libs.postgres import PgConnection

DIMENSION = 384
MODEL = "bench:clustered-384"
_COLUMNS = (
    "tenant_id",
    "source_kind",
    "document_key",
    "chunk_index",
    "content",
    "tags",
    "content_sha256",
    "embedding",
    "embedding_model",
)
_BATCH_ROWS = 5_000
# Offsets are drawn from a pool and scaled per row: generating 50 million Gaussian numbers in
# pure Python would take minutes, and a pool of 4,096 offsets times 256 centres and random
# scales still makes every vector distinct.
_OFFSET_POOL = 4_096


@dataclass(frozen=True, slots=True)
class ClusteredVectors:
    """Cluster centres and offsets from one seed; ``vector(i)`` is row ``i``'s embedding."""

    centres: Sequence[Sequence[float]]
    offsets: Sequence[Sequence[float]]
    spread: float
    seed: int

    @classmethod
    def make(cls, *, clusters: int = 256, spread: float = 0.6, seed: int = 42) -> ClusteredVectors:
        """Random unit centres and Gaussian offsets of norm about ``spread``."""
        rng = random.Random(seed)
        centres = [_unit([rng.gauss(0.0, 1.0) for _ in range(DIMENSION)]) for _ in range(clusters)]
        scale = 1.0 / math.sqrt(DIMENSION)
        offsets = [[rng.gauss(0.0, scale) for _ in range(DIMENSION)] for _ in range(_OFFSET_POOL)]
        return cls(centres, offsets, spread, seed)

    def vector(self, rng: random.Random) -> list[float]:
        """A new unit vector near a random centre."""
        centre = self.centres[rng.randrange(len(self.centres))]
        offset = self.offsets[rng.randrange(len(self.offsets))]
        second = self.offsets[rng.randrange(len(self.offsets))]
        weight = self.spread * rng.uniform(0.6, 1.0)
        mix = rng.uniform(-0.7, 0.7)
        return _unit(
            [c + weight * (o + mix * s) for c, o, s in zip(centre, offset, second, strict=True)]
        )


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(value * value for value in vector))
    return [value / norm for value in vector]


def rows(
    vectors: ClusteredVectors, tenant_id: str, count: int, seed: int
) -> Iterator[tuple[object, ...]]:
    """``count`` knowledge-base rows of ``tenant_id``, one chunk per document."""
    rng = random.Random(seed)
    for n in range(count):
        content = f"{tenant_id} synthetic chunk {n}"
        yield (
            tenant_id,
            "document",
            f"doc-{n}",
            0,
            content,
            [],
            hashlib.sha256(content.encode()).hexdigest(),
            vectors.vector(rng),
            MODEL,
        )


async def copy_rows(connection: PgConnection, records: Iterator[tuple[object, ...]]) -> int:
    """COPY ``records`` into ``memory_chunks`` in batches (binary, pgvector's codec)."""
    total = 0
    while True:
        batch = [record for _, record in zip(range(_BATCH_ROWS), records, strict=False)]
        if not batch:
            return total
        await connection.copy_records_to_table("memory_chunks", records=batch, columns=_COLUMNS)
        total += len(batch)
