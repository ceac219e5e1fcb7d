"""Embedding providers behind one Protocol, and the factory that builds the configured one."""

from memory_manager.embedders.base import Embedder
from memory_manager.embedders.deterministic import HashedNgramEmbedder
from memory_manager.embedders.factory import build_embedder
from memory_manager.embedders.local import LocalModelEmbedder
from memory_manager.embedders.openai_api import OpenAIEmbedder

__all__ = [
    "Embedder",
    "HashedNgramEmbedder",
    "LocalModelEmbedder",
    "OpenAIEmbedder",
    "build_embedder",
]
