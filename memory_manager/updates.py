"""Applying a ``memory.update.requested`` event: facts, the summary and texts to embed.

Off the reply path, so embeddings are computed here, all of one event's texts in one batch.

Idempotent: every write is keyed by what it is about (a fact by contact and key, the summary
by conversation, a text by its ``source_id``) and stamped with the event's ``occurred_at``; a
redelivery finds the same values under the same stamp and changes nothing, and an older
event arriving after a newer one is skipped instead of bringing old values back.

Fenced: an event from a turn carries the turn's token, and is ignored when it is stale by the
check every side effect of a turn goes through (``dispatcher.turns.TurnGuard``: the turn
lease's fence in Redis and ``conversation_fencing_token`` in Postgres, migration 0004). It is
checked again under a share lock on the conversation row in the same transaction as the
writes, which holds off a concurrent bump of ``last_fencing_token``; a ``turns`` row inserted
meanwhile is not held off (its foreign-key check takes a weaker lock), so the turn opener must
bump the column too.

Where things go: facts to ``facts``; the summary and the texts to ``memory_chunks`` with
``source_kind = 'summary'`` (conversation memory, as opposed to knowledge-base documents),
keyed ``summary:<conversation_id>`` (tag ``summary``) and ``text:<source_id>`` (tags ``text``
and ``role:<role>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import asyncpg

from dispatcher.turns import StaleTurn, TurnGuard
from events.envelope import Envelope
from events.types.memory import MemoryUpdateRequested
from memory_manager.chunk_store import DocumentRef, EmbeddedChunk, replace_chunks
from memory_manager.chunking import Chunk, chunk_text
from memory_manager.config import ChunkingConfig
from memory_manager.embedders.base import Embedder
from memory_manager.errors import UnknownConversation
from memory_manager.facts import NewFact, upsert_facts

SUMMARY = "summary"

_CONVERSATION = """
SELECT c.contact_id,
       conversation_fencing_token($1, $2) AS current_token
FROM conversations c
WHERE c.tenant_id = $1 AND c.conversation_id = $2
"""

_CONVERSATION_LOCKED = """
SELECT c.contact_id,
       conversation_fencing_token($1, $2) AS current_token
FROM conversations c
WHERE c.tenant_id = $1 AND c.conversation_id = $2
FOR SHARE OF c
"""


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """What applying one event did."""

    status: Literal["applied", "stale"]
    facts_changed: int = 0
    chunks_written: int = 0
    current_token: int = 0


@dataclass(frozen=True, slots=True)
class _Document:
    ref: DocumentRef
    chunks: list[Chunk]


class MemoryUpdater:
    """Applies memory updates to Postgres with one embedder; ``turns`` tells stale turns."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        embedder: Embedder,
        *,
        turns: TurnGuard,
        chunking: ChunkingConfig | None = None,
    ) -> None:
        self._pool = pool
        self._embedder = embedder
        self._turns = turns
        self._chunking = chunking or ChunkingConfig()

    async def apply(self, envelope: Envelope[MemoryUpdateRequested]) -> UpdateOutcome:
        """Apply one event; ``stale`` when its turn's token is no longer current."""
        tenant_id, conversation_id = envelope.tenant_id, envelope.conversation_id
        payload = envelope.payload
        row = await self._pool.fetchrow(_CONVERSATION, tenant_id, conversation_id)
        if row is None:
            raise UnknownConversation(
                f"memory update {envelope.id}: tenant {tenant_id!r} has no conversation "
                f"{conversation_id!r}"
            )
        if stale := await self._stale(envelope, row["current_token"]):
            return UpdateOutcome("stale", current_token=stale.current)
        documents = self._documents(envelope, row["contact_id"])
        texts = [chunk.content for document in documents for chunk in document.chunks]
        vectors = iter(await self._embedder.embed(texts) if texts else [])
        async with self._pool.acquire() as connection, connection.transaction():
            locked = await connection.fetchrow(_CONVERSATION_LOCKED, tenant_id, conversation_id)
            assert locked is not None  # conversations are deleted only with their tenant
            if stale := await self._stale(envelope, locked["current_token"]):
                return UpdateOutcome("stale", current_token=stale.current)
            facts = [
                NewFact(fact.key, fact.value, fact.source, fact.confidence, envelope.occurred_at)
                for fact in payload.facts
            ]
            changed = await upsert_facts(
                connection, tenant_id, locked["contact_id"], facts, conversation_id=conversation_id
            )
            written = 0
            for document in documents:
                embedded = [
                    EmbeddedChunk(chunk.content, chunk.sha256, next(vectors))
                    for chunk in document.chunks
                ]
                outcome = await replace_chunks(
                    connection,
                    document.ref,
                    embedded,
                    embedding_model=self._embedder.model,
                    written_at=envelope.occurred_at,
                )
                written += outcome.written
        return UpdateOutcome("applied", len(changed), written, locked["current_token"])

    async def _stale(
        self, envelope: Envelope[MemoryUpdateRequested], stored_token: int | None
    ) -> StaleTurn | None:
        token = envelope.payload.fencing_token
        if token is None:  # not from a turn: nothing to be superseded
            return None
        return await self._turns.stale(
            envelope.tenant_id, envelope.conversation_id, token, stored_token=stored_token
        )

    def _documents(
        self, envelope: Envelope[MemoryUpdateRequested], contact_id: str
    ) -> list[_Document]:
        payload = envelope.payload
        ids = {"contact_id": contact_id, "conversation_id": envelope.conversation_id}
        documents: list[_Document] = []
        if payload.summary is not None:
            key = f"summary:{envelope.conversation_id}"
            ref = DocumentRef(envelope.tenant_id, SUMMARY, key, tags=("summary",), **ids)
            documents.append(_Document(ref, chunk_text(payload.summary, self._chunking)))
        for text in payload.embed:
            tags = ("text", f"role:{text.role}")
            ref = DocumentRef(
                envelope.tenant_id, SUMMARY, f"text:{text.source_id}", tags=tags, **ids
            )
            documents.append(_Document(ref, chunk_text(text.text, self._chunking)))
        return documents
