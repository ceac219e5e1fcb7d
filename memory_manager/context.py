"""The context an agent gets for a turn, fitted to a token budget.

Token estimate: ``ceil(characters / 4) + 4`` per item: about four characters per token is
the usual figure for English and Portuguese with BPE tokenizers, and four tokens cover the
role and separators around each item. It errs on the generous side for plain prose.

Items are taken greedily in this priority order: each is taken if it fits in what is left,
else left out (a smaller item further down may still fit). Within a list, items go in the
list's own order (surest fact, best hit, newest message first) and the list stops at the first
item that does not fit, so that, e.g., recent messages have no holes:

1. the latest inbound message (what the turn must answer);
2. the workflow state (where the conversation is in a flow);
3. pending tool calls (what the turn is waiting for);
4. facts about the contact, surest first;
5. knowledge-base chunks for the latest inbound text, best first;
6. earlier messages, newest first (returned in chronological order);
7. the conversation summary;
8. scratch values of working memory.

The total of the estimates never exceeds the budget; ``omitted`` counts what was left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from memory_manager.errors import UnknownConversation
from memory_manager.facts import FactRecord, list_facts
from memory_manager.knowledge import KnowledgeBase
from memory_manager.knowledge_search import KnowledgeHit
from memory_manager.workflow import WorkflowState, WorkflowStore
from memory_manager.working import WorkingMemory

T = TypeVar("T")

_ITEM_OVERHEAD_TOKENS = 4

_CONVERSATION = "SELECT contact_id FROM conversations WHERE tenant_id = $1 AND conversation_id = $2"

_MESSAGES = """
SELECT message_id, direction, kind, body, occurred_at
FROM messages WHERE tenant_id = $1 AND conversation_id = $2
ORDER BY occurred_at DESC, created_at DESC, message_id DESC
LIMIT $3
"""

_SUMMARY = """
SELECT content FROM memory_chunks
WHERE tenant_id = $1 AND source_kind = 'summary' AND document_key = $2
ORDER BY chunk_index
"""


def estimate_tokens(text: str) -> int:
    """Tokens an item of ``text`` costs in the prompt (see the module's docstring)."""
    return math.ceil(len(text) / 4) + _ITEM_OVERHEAD_TOKENS


@dataclass(frozen=True, slots=True)
class ContextMessage:
    """A stored message, as text."""

    message_id: str
    direction: str
    text: str
    occurred_at: datetime


@dataclass(slots=True)
class AgentContext:
    """What the agent knows for this turn; ``tokens_used`` is at most ``token_budget``."""

    token_budget: int
    latest_inbound: ContextMessage | None = None
    workflow: WorkflowState | None = None
    pending_tools: dict[str, Any] = field(default_factory=dict)
    facts: list[FactRecord] = field(default_factory=list)
    knowledge: list[KnowledgeHit] = field(default_factory=list)
    messages: list[ContextMessage] = field(default_factory=list)
    summary: str | None = None
    scratch: dict[str, Any] = field(default_factory=dict)
    tokens_used: int = 0
    omitted: int = 0

    def take(self, text: str) -> bool:
        """Reserve room for an item of ``text``; ``False`` (and counted as omitted) if none."""
        cost = estimate_tokens(text)
        if self.tokens_used + cost > self.token_budget:
            self.omitted += 1
            return False
        self.tokens_used += cost
        return True


class ContextBuilder:
    """Gathers a conversation's memory from Postgres, Redis and the knowledge base."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        working_memory: WorkingMemory | None = None,
        knowledge: KnowledgeBase | None = None,
        max_messages: int = 30,
        knowledge_top_k: int = 5,
    ) -> None:
        self._pool = pool
        self._workflows = WorkflowStore(pool)
        self._working = working_memory
        self._knowledge = knowledge
        self._max_messages = max_messages
        self._knowledge_top_k = knowledge_top_k

    async def build(
        self, tenant_id: str, conversation_id: str, *, token_budget: int
    ) -> AgentContext:
        """The context of ``conversation_id`` in at most ``token_budget`` estimated tokens."""
        if token_budget < 1:
            raise ValueError(f"token_budget must be positive, got {token_budget}")
        contact_id = await self._pool.fetchval(_CONVERSATION, tenant_id, conversation_id)
        if contact_id is None:
            raise UnknownConversation(
                f"tenant {tenant_id!r} has no conversation {conversation_id!r}"
            )
        messages = await self._messages(tenant_id, conversation_id)
        latest = next((m for m in messages if m.direction == "in"), None)
        context = AgentContext(token_budget)
        if latest is not None and context.take(latest.text):
            context.latest_inbound = latest
        workflow = await self._workflows.read(tenant_id, conversation_id)
        if workflow is not None and context.take(
            _json(workflow.data) + workflow.flow + workflow.step
        ):
            context.workflow = workflow
        snapshot = await self._working.read(tenant_id, conversation_id) if self._working else None
        if snapshot is not None:
            _take_values(context, snapshot.pending_tools, context.pending_tools)
        async with self._pool.acquire() as connection:
            facts = await list_facts(connection, tenant_id, contact_id)
        context.facts = _take_list(context, facts, lambda f: f"{f.key}: {f.value}")
        if latest is not None and self._knowledge is not None:
            hits = await self._knowledge.search(tenant_id, latest.text, top_k=self._knowledge_top_k)
            context.knowledge = _take_list(context, hits, lambda hit: hit.content)
        earlier = [m for m in messages if m is not latest]
        context.messages = _take_list(context, earlier, lambda m: m.text)[::-1]
        summary = await self._summary(tenant_id, conversation_id)
        if summary and context.take(summary):
            context.summary = summary
        if snapshot is not None:
            _take_values(context, snapshot.scratch, context.scratch)
        return context

    async def _messages(self, tenant_id: str, conversation_id: str) -> list[ContextMessage]:
        rows = await self._pool.fetch(_MESSAGES, tenant_id, conversation_id, self._max_messages)
        return [
            ContextMessage(
                row["message_id"],
                row["direction"],
                _message_text(row["kind"], row["body"]),
                row["occurred_at"],
            )
            for row in rows
        ]

    async def _summary(self, tenant_id: str, conversation_id: str) -> str | None:
        rows = await self._pool.fetch(_SUMMARY, tenant_id, f"summary:{conversation_id}")
        return "\n".join(row["content"] for row in rows) or None


def _take_list(context: AgentContext, items: list[T], text_of: Callable[[T], str]) -> list[T]:
    taken: list[T] = []
    for item in items:
        if not context.take(text_of(item)):
            context.omitted += len(items) - len(taken) - 1
            break
        taken.append(item)
    return taken


def _take_values(context: AgentContext, values: Mapping[str, Any], into: dict[str, Any]) -> None:
    for name, value in values.items():
        if context.take(f"{name}: {_json(value)}"):
            into[name] = value


def _message_text(kind: str, body: str | None) -> str:
    """The text of a stored message body, or its kind in brackets for media without text."""
    data = json.loads(body) if body else {}
    for key in ("text", "caption", "body"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return f"[{kind}]"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
