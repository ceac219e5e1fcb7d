"""Embeddings from any server that speaks OpenAI's ``POST /v1/embeddings``, in batches."""

from __future__ import annotations

from collections.abc import Sequence

import openai
from openai import AsyncOpenAI

from memory_manager.embedders.base import check_vectors
from memory_manager.errors import EmbeddingFailed

# The SDK refuses to start without a key; local servers (vLLM, Ollama) ignore it.
_PLACEHOLDER_KEY = "unused"


class OpenAIEmbedder:
    """Sends texts ``batch_size`` at a time, one request after another, and keeps their order."""

    def __init__(
        self,
        *,
        model: str,
        dimension: int,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._model = model
        self._dimension = dimension
        self._batch_size = batch_size
        self._client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or _PLACEHOLDER_KEY,
            timeout=timeout_s,
            max_retries=max_retries,
        )

    @property
    def model(self) -> str:
        """Provider and model name stored with each vector."""
        return f"openai:{self._model}"

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in the order given."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(await self._embed_batch(texts[start : start + self._batch_size]))
        return vectors

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def _embed_batch(self, batch: Sequence[str]) -> list[list[float]]:
        try:
            response = await self._client.embeddings.create(
                model=self._model, input=list(batch), encoding_format="float"
            )
        except openai.APIError as exc:
            raise EmbeddingFailed(
                f"embeddings request to {self._client.base_url} for model {self._model!r} "
                f"failed: {exc}"
            ) from exc
        ordered = sorted(response.data, key=lambda item: item.index)
        vectors = [list(item.embedding) for item in ordered]
        check_vectors(self.model, self._dimension, len(batch), vectors)
        return vectors
