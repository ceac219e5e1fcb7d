"""Writing one document's chunks to ``memory_chunks``: the whole set replaced in one transaction.

A "document" is everything under one ``(tenant, source_kind, document_key)``: a knowledge-base
file, a conversation's summary, or one remembered text. Rows whose content, tags and model
did not change are left alone; indexes past the new last chunk are deleted. Writers of the
same document are serialised by a transaction-level advisory lock, and a write stamped with
``written_at`` is skipped when the stored document is newer (a redelivered or reordered update
never brings back an older version).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from libs.postgres import PgConnection

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3, 0))"

_NEWEST = """
SELECT max(updated_at) FROM memory_chunks
WHERE tenant_id = $1 AND source_kind = $2 AND document_key = $3
"""

_UPSERT = """
INSERT INTO memory_chunks AS m
    (tenant_id, source_kind, document_key, chunk_index, contact_id, conversation_id, content,
     tags, content_sha256, embedding, embedding_model, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
ON CONFLICT (tenant_id, source_kind, document_key, chunk_index) DO UPDATE
SET contact_id = EXCLUDED.contact_id, conversation_id = EXCLUDED.conversation_id,
    content = EXCLUDED.content, tags = EXCLUDED.tags, content_sha256 = EXCLUDED.content_sha256,
    embedding = EXCLUDED.embedding, embedding_model = EXCLUDED.embedding_model,
    updated_at = EXCLUDED.updated_at
WHERE (m.content_sha256, m.tags, m.embedding_model, m.contact_id, m.conversation_id)
    IS DISTINCT FROM (EXCLUDED.content_sha256, EXCLUDED.tags, EXCLUDED.embedding_model,
                      EXCLUDED.contact_id, EXCLUDED.conversation_id)
   OR ($13 AND EXCLUDED.updated_at > m.updated_at)
RETURNING chunk_index
"""

_DELETE_PAST = """
DELETE FROM memory_chunks
WHERE tenant_id = $1 AND source_kind = $2 AND document_key = $3 AND chunk_index >= $4
"""


@dataclass(frozen=True, slots=True)
class EmbeddedChunk:
    """A chunk's content, its SHA-256 and its vector."""

    content: str
    sha256: str
    embedding: Sequence[float]


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """Which document, and what hangs it to a contact or conversation."""

    tenant_id: str
    source_kind: str
    document_key: str
    contact_id: str | None = None
    conversation_id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplaceOutcome:
    """What a replacement did: chunks written, chunks deleted, or skipped as stale."""

    written: int
    deleted: int
    stale: bool = False


async def replace_chunks(
    connection: PgConnection,
    document: DocumentRef,
    chunks: Sequence[EmbeddedChunk],
    *,
    embedding_model: str,
    written_at: datetime | None = None,
) -> ReplaceOutcome:
    """Make ``document``'s chunks exactly ``chunks`` (indexed in order), in one transaction."""
    ids = (document.tenant_id, document.source_kind, document.document_key)
    async with connection.transaction():
        await connection.execute(_LOCK, *ids)
        if written_at is not None:
            newest = await connection.fetchval(_NEWEST, *ids)
            if newest is not None and newest > written_at:
                return ReplaceOutcome(written=0, deleted=0, stale=True)
        stamp = written_at or datetime.now(UTC)
        written = 0
        for index, chunk in enumerate(chunks):
            changed = await connection.fetchval(
                _UPSERT,
                *ids,
                index,
                document.contact_id,
                document.conversation_id,
                chunk.content,
                list(document.tags),
                chunk.sha256,
                list(chunk.embedding),
                embedding_model,
                stamp,
                # A stamped write moves an unchanged chunk's time on, so the document's
                # newest time is its latest update's even when the content repeats.
                written_at is not None,
            )
            written += changed is not None
        status = await connection.execute(_DELETE_PAST, *ids, len(chunks))
    return ReplaceOutcome(written=written, deleted=int(status.split()[-1]))
