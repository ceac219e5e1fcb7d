"""``knowledge.search`` over a small in-test knowledge base that records who asked."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from libs.keys import KeySpace
from memory_manager.knowledge_search import KnowledgeHit, KnowledgeSearch
from tests.tool_support import SeededConversation, tool_context, tool_services, with_services
from tool_gateway.tool import ToolContext, ToolUnavailable
from tool_gateway.tools.knowledge import KNOWLEDGE_SEARCH, KnowledgeSearchInput

SEEDED = SeededConversation("acme", "acme-wa", "c1", "acme-conversation-1", "acme-turn-1", 1)


@dataclass
class Shelf:
    """A knowledge base per tenant, searched by shared words; it records every search."""

    documents: dict[str, list[KnowledgeHit]]
    searches: list[tuple[str, str, int, float, tuple[str, ...]]] = field(default_factory=list)

    async def search(
        self, tenant_id: str, query: str, *, top_k: int, min_score: float, tags: tuple[str, ...]
    ) -> list[KnowledgeHit]:
        self.searches.append((tenant_id, query, top_k, min_score, tags))
        words = set(query.lower().split())
        found = []
        for hit in self.documents.get(tenant_id, []):
            shared = len(words & set(hit.content.lower().split()))
            score = shared / len(words)
            if score >= min_score and set(tags) <= set(hit.tags) and shared:
                found.append(replace(hit, score=score))
        return sorted(found, key=lambda hit: hit.score, reverse=True)[:top_k]


class Unreachable:
    """A knowledge base whose database is down."""

    async def search(
        self, tenant_id: str, query: str, *, top_k: int, min_score: float, tags: tuple[str, ...]
    ) -> list[KnowledgeHit]:
        raise ConnectionRefusedError("connection refused")


def hit(document: str, content: str, *tags: str) -> KnowledgeHit:
    return KnowledgeHit(document, 0, content, 0.0, tags)


@pytest.fixture
def shelf() -> Shelf:
    return Shelf(
        {
            "acme": [
                hit("returns.md", "returns are free within 30 days", "returns"),
                hit("hours.md", "open monday to friday 9 to 18", "hours"),
                hit("prices.md", "delivery costs 10 and returns cost nothing", "pricing"),
            ],
            "globex": [hit("secret.md", "globex returns policy is secret", "returns")],
        }
    )


def context_for(
    redis: aioredis.Redis, keys: KeySpace, knowledge: KnowledgeSearch | None
) -> ToolContext:
    base = tool_context(SEEDED, tool_services(redis, keys, None))
    services = replace(base.services, knowledge=knowledge)
    return with_services(base, services)


async def test_hits_come_from_the_calling_tenant_best_first(
    redis: aioredis.Redis, keys: KeySpace, shelf: Shelf
) -> None:
    context = context_for(redis, keys, shelf)
    result = await KNOWLEDGE_SEARCH.run(context, KnowledgeSearchInput(query="returns policy"))

    assert [(h.document, h.score) for h in result.hits] == [("returns.md", 0.5), ("prices.md", 0.5)]
    assert "secret" not in str(result.model_dump())
    assert shelf.searches == [("acme", "returns policy", 5, 0.0, ())]


async def test_top_k_tags_and_min_score_reach_the_knowledge_base(
    redis: aioredis.Redis, keys: KeySpace, shelf: Shelf
) -> None:
    context = context_for(redis, keys, shelf)
    search = KnowledgeSearchInput(query="returns free", top_k=1, tags=["returns"], min_score=0.5)
    result = await KNOWLEDGE_SEARCH.run(context, search)

    assert [(h.document, h.content, h.score) for h in result.hits] == [
        ("returns.md", "returns are free within 30 days", 1.0)
    ]
    assert shelf.searches == [("acme", "returns free", 1, 0.5, ("returns",))]


async def test_no_knowledge_base_means_unavailable(redis: aioredis.Redis, keys: KeySpace) -> None:
    context = context_for(redis, keys, None)
    with pytest.raises(ToolUnavailable, match="no knowledge base is configured"):
        await KNOWLEDGE_SEARCH.run(context, KnowledgeSearchInput(query="hours"))


async def test_an_unreachable_knowledge_base_means_unavailable(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    context = context_for(redis, keys, Unreachable())
    with pytest.raises(ToolUnavailable, match="could not be reached: connection refused"):
        await KNOWLEDGE_SEARCH.run(context, KnowledgeSearchInput(query="hours"))


@pytest.mark.parametrize(
    "arguments",
    [
        {"query": ""},
        {"query": "x", "top_k": 0},
        {"query": "x", "top_k": 11},
        {"query": "x", "min_score": 1.5},
        {"query": "x", "tags": ["Not A Tag"]},
        {"query": "x", "tenant_id": "globex"},
    ],
)
def test_bad_arguments_are_refused_by_the_schema(arguments: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        KnowledgeSearchInput.model_validate(arguments)


def test_the_tool_reads_only() -> None:
    assert KNOWLEDGE_SEARCH.writes is False
    assert "tenant" not in KnowledgeSearchInput.model_json_schema()["properties"]
