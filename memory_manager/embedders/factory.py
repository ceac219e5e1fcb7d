"""Building the configured embedder."""

from __future__ import annotations

from memory_manager.config import (
    DeterministicEmbedderConfig,
    LocalEmbedderConfig,
    MemoryConfig,
    OpenAIEmbedderConfig,
)
from memory_manager.embedders.base import Embedder
from memory_manager.embedders.deterministic import HashedNgramEmbedder
from memory_manager.embedders.local import LocalModelEmbedder, ensure_available
from memory_manager.embedders.openai_api import OpenAIEmbedder


def build_embedder(config: MemoryConfig) -> Embedder:
    """The embedder ``config`` names, producing ``config.dimension``-wide vectors.

    A local model whose packages are missing fails here, naming the extra to install.
    """
    embedder = config.embedder
    if isinstance(embedder, DeterministicEmbedderConfig):
        return HashedNgramEmbedder(config.dimension)
    if isinstance(embedder, OpenAIEmbedderConfig):
        return OpenAIEmbedder(
            model=embedder.model,
            dimension=config.dimension,
            base_url=embedder.base_url,
            api_key=embedder.api_key.reveal() if embedder.api_key else None,
            batch_size=embedder.batch_size,
            timeout_s=embedder.timeout_s,
            max_retries=embedder.max_retries,
        )
    if isinstance(embedder, LocalEmbedderConfig):
        ensure_available(embedder.model)
        return LocalModelEmbedder(
            model=embedder.model, dimension=config.dimension, batch_size=embedder.batch_size
        )
    raise TypeError(f"unknown embedder config {embedder!r}")
