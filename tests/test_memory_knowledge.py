"""The knowledge base: paraphrased questions find their chunk, tenants never see each other's."""

from __future__ import annotations

import asyncpg
import pytest

from memory_manager.config import ChunkingConfig, SearchConfig
from memory_manager.embedders.deterministic import HashedNgramEmbedder
from memory_manager.errors import EmbeddingDimensionMismatch
from memory_manager.knowledge import KnowledgeBase
from memory_manager.knowledge_search import KnowledgeSearch
from memory_manager.vector_search import (
    VectorIndex,
    VectorQuery,
    check_embedding_dimension,
    pgvector_version,
)
from tests.memory_support import KB_DOCUMENTS, PARAPHRASES, ingest_documents, keys_of, two_tenants


def knowledge_base(pool: asyncpg.Pool, **chunking: int) -> KnowledgeBase:
    """A knowledge base with the deterministic embedder."""
    config = ChunkingConfig.model_validate(chunking) if chunking else None
    return KnowledgeBase(pool, HashedNgramEmbedder(), chunking=config)


async def test_paraphrased_questions_find_the_right_chunk(pg_pool: asyncpg.Pool) -> None:
    await two_tenants(pg_pool)
    knowledge = knowledge_base(pg_pool)
    await ingest_documents(knowledge, "acme")
    for question, document in PARAPHRASES:
        hits = await knowledge.search("acme", question, top_k=3, min_score=0.0, tags=())
        assert hits, question
        assert hits[0].document_key == document, (question, keys_of(hits))
        assert hits == sorted(hits, key=lambda hit: -hit.score)


async def test_the_heading_path_travels_with_the_hit(pg_pool: asyncpg.Pool) -> None:
    await two_tenants(pg_pool)
    knowledge = knowledge_base(pg_pool)
    await ingest_documents(knowledge, "acme")
    [hit] = await knowledge.search(
        "acme", "forgot password reset link", top_k=1, min_score=0.0, tags=()
    )
    assert hit.content.startswith("Account > Password reset\n\n")
    assert 0.0 < hit.score <= 1.0


async def test_another_tenant_identical_document_is_never_returned(pg_pool: asyncpg.Pool) -> None:
    await two_tenants(pg_pool)
    knowledge: KnowledgeSearch = knowledge_base(pg_pool)
    assert isinstance(knowledge, KnowledgeBase)
    await ingest_documents(knowledge, "acme")
    await ingest_documents(knowledge, "globex")
    secret = {"internal.md": "# Discounts\n\nEmployees get a 40% discount with code STAFF40."}
    await ingest_documents(knowledge, "globex", secret)
    acme_ids = {
        row["chunk_id"]
        for row in await pg_pool.fetch(
            "SELECT chunk_id FROM memory_chunks WHERE tenant_id = 'acme'"
        )
    }
    for question, _ in [*PARAPHRASES, ("employee discount code", "")]:
        hits = await knowledge.search("acme", question, top_k=50, min_score=-1.0, tags=())
        assert "internal.md" not in keys_of(hits)
        assert len(hits) == len(acme_ids), "all of acme's chunks, none of globex's"
    found = await pg_pool.fetch(
        "SELECT chunk_id FROM memory_chunks WHERE tenant_id = 'acme' AND content LIKE '%STAFF40%'"
    )
    assert found == []


async def test_tags_and_min_score_filter_hits(pg_pool: asyncpg.Pool) -> None:
    await two_tenants(pg_pool)
    knowledge = knowledge_base(pg_pool)
    await knowledge.ingest("acme", "shipping.md", KB_DOCUMENTS["shipping.md"], tags=["logistics"])
    await knowledge.ingest("acme", "returns.md", KB_DOCUMENTS["returns.md"], tags=["after-sale"])
    hits = await knowledge.search(
        "acme", "refund money back", top_k=10, min_score=-1.0, tags=("logistics",)
    )
    assert set(keys_of(hits)) == {"shipping.md"}
    assert all(hit.tags == ("logistics",) for hit in hits)
    assert (
        await knowledge.search("acme", "refund money back", top_k=10, min_score=0.99, tags=()) == []
    )
    assert await knowledge.search("acme", "   ", top_k=10, min_score=0.0, tags=()) == []


async def test_re_ingesting_an_unchanged_document_writes_nothing(pg_pool: asyncpg.Pool) -> None:
    await two_tenants(pg_pool)
    knowledge = knowledge_base(pg_pool)
    first = await knowledge.ingest("acme", "shipping.md", KB_DOCUMENTS["shipping.md"])
    assert (first.outcome, first.embedded) == ("created", first.chunks)
    before = await pg_pool.fetch("SELECT chunk_id, updated_at FROM memory_chunks ORDER BY 1")
    again = await knowledge.ingest("acme", "shipping.md", KB_DOCUMENTS["shipping.md"])
    assert (again.outcome, again.embedded) == ("unchanged", 0)
    assert (
        await pg_pool.fetch("SELECT chunk_id, updated_at FROM memory_chunks ORDER BY 1") == before
    )


async def test_a_changed_document_replaces_its_chunks_and_drops_stale_ones(
    pg_pool: asyncpg.Pool,
) -> None:
    await two_tenants(pg_pool)
    knowledge = knowledge_base(pg_pool, max_chars=200, overlap_chars=0)
    sections = [f"## Topic {n}\n\nParagraph about subject number {n}." for n in range(6)]
    await knowledge.ingest("acme", "faq.md", "\n\n".join(sections))
    changed = [sections[0], "## Topic 1\n\nNew words about pricing.", sections[2]]
    result = await knowledge.ingest("acme", "faq.md", "\n\n".join(changed))
    assert (result.outcome, result.chunks, result.embedded) == ("replaced", 3, 1)
    rows = await pg_pool.fetch(
        "SELECT chunk_index, content FROM memory_chunks WHERE document_key = 'faq.md'"
        " ORDER BY chunk_index"
    )
    assert [row["chunk_index"] for row in rows] == [0, 1, 2]
    assert rows[1]["content"] == "Topic 1\n\nNew words about pricing."
    [hit] = await knowledge.search("acme", "pricing", top_k=1, min_score=0.0, tags=())
    assert hit.chunk_index == 1
    emptied = await knowledge.ingest("acme", "faq.md", "")
    assert emptied.outcome == "removed"
    assert await pg_pool.fetchval("SELECT count(*) FROM memory_chunks") == 0


async def test_a_tenant_filter_still_returns_k_rows_among_many_others(
    pg_pool: asyncpg.Pool,
) -> None:
    await two_tenants(pg_pool)
    embedder = HashedNgramEmbedder()
    knowledge = KnowledgeBase(pg_pool, embedder, search=SearchConfig(ef_search=10))
    many = {
        f"doc-{n}.md": f"# Note {n}\n\nGlobex note number {n} about widgets." for n in range(300)
    }
    await ingest_documents(knowledge, "globex", many)
    await ingest_documents(knowledge, "acme", {f"a{n}.md": f"Acme fact {n}." for n in range(12)})
    index = VectorIndex(pg_pool, ef_search=10)
    [vector] = await embedder.embed(["widgets note"])
    query = VectorQuery("acme", vector, embedder.model, top_k=10)
    hits = await index.search(query)
    async with pg_pool.acquire() as connection:
        version = await pgvector_version(connection)
    if version >= (0, 8):
        assert len(hits) == 10, "iterative scan walks past the other tenant's rows"
    assert all(hit.document_key.startswith("a") for hit in hits)


async def test_the_dimension_is_checked_against_the_column(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as connection:
        await check_embedding_dimension(connection, 384)
        with pytest.raises(
            EmbeddingDimensionMismatch,
            match=r"memory.dimension is 768 but "
            r"memory_chunks.embedding is vector\(384\)",
        ):
            await check_embedding_dimension(connection, 768)


async def test_a_missing_table_is_named(pg_empty_dsn: str) -> None:
    conn = await asyncpg.connect(pg_empty_dsn)
    try:
        with pytest.raises(EmbeddingDimensionMismatch, match="run `atende migrate`"):
            await check_embedding_dimension(conn, 384)
    finally:
        await conn.close()
