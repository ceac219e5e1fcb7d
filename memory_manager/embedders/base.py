"""The port every embedding provider implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from memory_manager.errors import EmbeddingFailed


class Embedder(Protocol):
    """Turns texts into vectors of ``dimension`` floats, in the order given.

    ``model`` names the provider and model; it is stored with each vector so that vectors of
    different models are never compared.
    """

    @property
    def model(self) -> str:
        """Provider and model, e.g. ``openai:text-embedding-3-small``."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text; raises ``EmbeddingFailed`` when the provider fails."""
        ...


def check_vectors(model: str, dimension: int, texts: int, vectors: list[list[float]]) -> None:
    """Refuse an answer with the wrong number of vectors or a vector of the wrong width."""
    if len(vectors) != texts:
        raise EmbeddingFailed(f"embedder {model} returned {len(vectors)} vectors for {texts} texts")
    for position, vector in enumerate(vectors):
        if len(vector) != dimension:
            raise EmbeddingFailed(
                f"embedder {model} returned a vector of {len(vector)} dimensions at position "
                f"{position}; memory.dimension is {dimension}"
            )
