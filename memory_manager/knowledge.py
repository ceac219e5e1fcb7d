"""A tenant's knowledge base: documents chunked, embedded and searched (``KnowledgeSearch``).

Ingesting a document compares the SHA-256 of each new chunk with what is stored: an unchanged
document costs one read and writes nothing; a changed one is embedded only for chunks whose
content is new (vectors of unchanged content are reused, even when the chunk moved) and then
replaced in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import asyncpg

from memory_manager.chunk_store import DocumentRef, EmbeddedChunk, replace_chunks
from memory_manager.chunking import Chunk, chunk_text
from memory_manager.config import ChunkingConfig, SearchConfig
from memory_manager.embedders.base import Embedder
from memory_manager.knowledge_search import KnowledgeHit
from memory_manager.vector_search import VectorIndex, VectorQuery

DOCUMENT = "document"

_STORED = """
SELECT chunk_index, content_sha256, tags, embedding_model, embedding
FROM memory_chunks
WHERE tenant_id = $1 AND source_kind = 'document' AND document_key = $2
ORDER BY chunk_index
"""

_TENANT_EXISTS = "SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What ingesting one document did."""

    document_key: str
    outcome: Literal["unchanged", "created", "replaced", "removed"]
    chunks: int
    embedded: int


class KnowledgeBase:
    """Ingests and searches the knowledge-base documents of any tenant."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        embedder: Embedder,
        *,
        chunking: ChunkingConfig | None = None,
        search: SearchConfig | None = None,
    ) -> None:
        self._pool = pool
        self._embedder = embedder
        self._chunking = chunking or ChunkingConfig()
        self.search_defaults = search or SearchConfig()
        self._index = VectorIndex(pool, ef_search=self.search_defaults.ef_search)

    async def tenant_exists(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` is a tenant (documents hang off one)."""
        return bool(await self._pool.fetchval(_TENANT_EXISTS, tenant_id))

    async def ingest(
        self, tenant_id: str, document_key: str, text: str, *, tags: Sequence[str] = ()
    ) -> IngestResult:
        """Make the stored chunks of ``document_key`` those of ``text``."""
        if not 1 <= len(document_key) <= 512:
            raise ValueError(f"document key must have 1 to 512 characters: {document_key!r}")
        chunks = chunk_text(text, self._chunking)
        wanted_tags = tuple(sorted(set(tags)))
        stored = await self._pool.fetch(_STORED, tenant_id, document_key)
        if _same(stored, chunks, wanted_tags, self._embedder.model):
            return IngestResult(document_key, "unchanged", len(chunks), 0)
        reusable = {
            row["content_sha256"]: row["embedding"].to_list()
            for row in stored
            if row["embedding_model"] == self._embedder.model and row["embedding"] is not None
        }
        missing = [chunk for chunk in chunks if chunk.sha256 not in reusable]
        vectors = await self._embedder.embed([chunk.content for chunk in missing])
        reusable.update(zip((chunk.sha256 for chunk in missing), vectors, strict=True))
        document = DocumentRef(tenant_id, DOCUMENT, document_key, tags=wanted_tags)
        embedded = [EmbeddedChunk(c.content, c.sha256, reusable[c.sha256]) for c in chunks]
        async with self._pool.acquire() as connection:
            await replace_chunks(
                connection, document, embedded, embedding_model=self._embedder.model
            )
        outcome: Literal["created", "replaced", "removed"] = (
            "removed" if not chunks else "replaced" if stored else "created"
        )
        return IngestResult(document_key, outcome, len(chunks), len(missing))

    async def search(
        self,
        tenant_id: str,
        query: str,
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        tags: tuple[str, ...] = (),
    ) -> list[KnowledgeHit]:
        """The tenant's chunks nearest to ``query`` (the ``knowledge.search`` tool's port)."""
        if not query.strip():
            return []
        [vector] = await self._embedder.embed([query])
        found = await self._index.search(
            VectorQuery(
                tenant_id=tenant_id,
                vector=vector,
                embedding_model=self._embedder.model,
                top_k=top_k if top_k is not None else self.search_defaults.top_k,
                min_score=min_score if min_score is not None else self.search_defaults.min_score,
                tags=tags,
            )
        )
        return [
            KnowledgeHit(hit.document_key, hit.chunk_index, hit.content, hit.score, hit.tags)
            for hit in found
        ]


def _same(
    stored: Sequence[asyncpg.Record], chunks: Sequence[Chunk], tags: tuple[str, ...], model: str
) -> bool:
    """Whether the stored rows already are exactly these chunks, tags and model."""
    if len(stored) != len(chunks):
        return False
    return all(
        row["chunk_index"] == chunk.index
        and row["content_sha256"] == chunk.sha256
        and tuple(row["tags"]) == tags
        and row["embedding_model"] == model
        for row, chunk in zip(stored, chunks, strict=True)
    )
