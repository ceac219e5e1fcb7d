"""Searching a tenant's knowledge base, as a port: what a search finds and who can search.

``memory_manager.knowledge.KnowledgeBase`` implements it over pgvector; the ``knowledge.search``
tool and the agent's context take any implementation, so tests can pass a small one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class KnowledgeHit:
    """One chunk of the knowledge base that matches a query."""

    document_key: str
    chunk_index: int
    content: str
    score: float
    tags: tuple[str, ...]


class KnowledgeSearch(Protocol):
    """Semantic search over a tenant's knowledge base."""

    async def search(
        self, tenant_id: str, query: str, *, top_k: int, min_score: float, tags: tuple[str, ...]
    ) -> list[KnowledgeHit]:
        """The tenant's chunks nearest to ``query``, best first."""
        ...
