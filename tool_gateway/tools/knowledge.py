"""``knowledge.search``: passages of the tenant's knowledge base that answer a question.

Read-only. The search runs for ``context.tenant_id`` only; nothing in the arguments can
name another tenant.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from memory_manager.knowledge_search import KnowledgeSearch
from tool_gateway.tool import Tool, ToolContext, ToolUnavailable

Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class KnowledgeSearchInput(BaseModel):
    """A question for the knowledge base."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        max_length=1_000,
        description="What to look for, e.g. the customer's question in a few words.",
    )
    top_k: int = Field(default=5, ge=1, le=10, description="How many passages to return.")
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=10,
        description="Only passages with these tags (e.g. `pricing`, `returns`); empty: all.",
    )
    min_score: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Leave out passages less similar than this."
    )


class KnowledgePassage(BaseModel):
    """One matching passage."""

    document: str = Field(description="The document it comes from.")
    content: str
    score: float = Field(description="Similarity to the query, 1 is best.")


class KnowledgeSearchOutput(BaseModel):
    """The best passages first; empty when nothing matched well enough."""

    hits: list[KnowledgePassage]


def knowledge_base(context: ToolContext) -> KnowledgeSearch:
    """The knowledge base wired into this process; ``ToolUnavailable`` when there is none."""
    knowledge = context.services.knowledge
    if knowledge is None:
        raise ToolUnavailable("no knowledge base is configured")
    return knowledge


async def search_knowledge(
    context: ToolContext, search: KnowledgeSearchInput
) -> KnowledgeSearchOutput:
    """Search the calling tenant's knowledge base."""
    knowledge = knowledge_base(context)
    try:
        hits = await knowledge.search(
            context.tenant_id,
            search.query,
            top_k=search.top_k,
            min_score=search.min_score,
            tags=tuple(search.tags),
        )
    except OSError as exc:  # includes refused and reset connections
        raise ToolUnavailable(f"the knowledge base could not be reached: {exc}") from exc
    ranked = sorted(hits, key=lambda hit: hit.score, reverse=True)[: search.top_k]
    return KnowledgeSearchOutput(
        hits=[
            KnowledgePassage(document=hit.document_key, content=hit.content, score=hit.score)
            for hit in ranked
            if hit.score >= search.min_score
        ]
    )


KNOWLEDGE_SEARCH = Tool(
    name="knowledge.search",
    description=(
        "Search the business's knowledge base (policies, prices, opening hours, FAQs) and "
        "return the passages that best answer a question. Use it before answering facts."
    ),
    input_model=KnowledgeSearchInput,
    output_model=KnowledgeSearchOutput,
    run=search_knowledge,
    writes=False,
    timeout_s=10.0,
)
