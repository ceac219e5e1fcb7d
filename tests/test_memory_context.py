"""The agent's context: everything remembered, in priority order, never over the token budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import redis.asyncio as aioredis

from libs.keys import KeySpace
from memory_manager.context import AgentContext, ContextBuilder, estimate_tokens
from memory_manager.embedders.deterministic import HashedNgramEmbedder
from memory_manager.errors import UnknownConversation
from memory_manager.facts import NewFact, upsert_facts
from memory_manager.knowledge import KnowledgeBase
from memory_manager.workflow import WorkflowStore
from memory_manager.working import WorkingMemory
from tests.memory_support import ingest_documents
from tests.tool_support import SeededConversation, seed_conversation

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
CONVERSATION = [
    ("in", "Hello, I bought shoes last week."),
    ("out", "Hi Maria! How can I help with your shoes?"),
    ("in", "They arrived damaged. Can I send the product back and get my money refunded?"),
]


async def add_messages(pool: asyncpg.Pool, seeded: SeededConversation) -> None:
    """Store the sample conversation's messages, a minute apart."""
    for n, (direction, text) in enumerate(CONVERSATION):
        inbound = direction == "in"
        await pool.execute(
            "INSERT INTO messages (tenant_id, message_id, conversation_id, channel_id, direction,"
            " provider_message_id, seq, kind, body, occurred_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, 'text', $8::jsonb, $9)",
            seeded.tenant_id,
            f"m{n}",
            seeded.conversation_id,
            seeded.channel_id,
            direction,
            f"wamid.{n}" if inbound else None,
            n + 1 if inbound else None,
            json.dumps({"text": text}),
            T0 + timedelta(minutes=n),
        )


@pytest.fixture
async def builder(pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace) -> ContextBuilder:
    """A conversation with messages, facts, a flow, working memory and a knowledge base."""
    seeded = await seed_conversation(pg_pool)
    await add_messages(pg_pool, seeded)
    async with pg_pool.acquire() as connection:
        fact = NewFact("contact.name", "Maria", "channel", 1.0, T0)
        await upsert_facts(connection, "acme", seeded.contact_id, [fact])
    await WorkflowStore(pg_pool).create(
        "acme", seeded.conversation_id, flow="returns", step="ask_photo", data={}, fencing_token=1
    )
    working = WorkingMemory(redis, keys, partitions=4)
    await working.set_pending_tool("acme", seeded.conversation_id, "call-1", {"tool": "orders"})
    await working.set_scratch("acme", seeded.conversation_id, "order_id", "123")
    knowledge = KnowledgeBase(pg_pool, HashedNgramEmbedder())
    await ingest_documents(knowledge, "acme")
    return ContextBuilder(pg_pool, working_memory=working, knowledge=knowledge)


async def test_a_generous_budget_gets_everything(builder: ContextBuilder) -> None:
    context = await builder.build("acme", "acme-conversation-1", token_budget=10_000)
    assert context.latest_inbound is not None
    assert context.latest_inbound.text == CONVERSATION[2][1]
    assert [m.text for m in context.messages] == [CONVERSATION[0][1], CONVERSATION[1][1]]
    assert context.workflow is not None
    assert context.workflow.step == "ask_photo"
    assert context.pending_tools == {"call-1": {"tool": "orders"}}
    assert context.scratch == {"order_id": "123"}
    assert [(f.key, f.value) for f in context.facts] == [("contact.name", "Maria")]
    assert context.knowledge
    assert context.knowledge[0].document_key == "returns.md"
    assert context.omitted == 0
    assert context.tokens_used <= 10_000


@pytest.mark.parametrize("budget", [1, 20, 40, 60, 90, 150, 300, 600])
async def test_the_budget_is_never_exceeded_and_priorities_hold(
    builder: ContextBuilder, budget: int
) -> None:
    context = await builder.build("acme", "acme-conversation-1", token_budget=budget)
    assert context.tokens_used <= budget
    assert context.tokens_used == _recount(context)
    question = estimate_tokens(CONVERSATION[2][1])
    # Items are taken greedily in priority order: one is left out only when it no longer fits.
    assert (context.latest_inbound is not None) == (question <= budget), "the question first"
    if context.knowledge or context.messages:
        fact = estimate_tokens("contact.name: Maria")
        assert context.facts or context.tokens_used + fact > budget, "facts before knowledge"
    if context.messages:
        assert context.messages[-1].text == CONVERSATION[1][1], "newest history first"


async def test_an_unknown_conversation_is_named(builder: ContextBuilder) -> None:
    with pytest.raises(UnknownConversation, match="tenant 'globex' has no conversation"):
        await builder.build("globex", "acme-conversation-1", token_budget=100)


def test_the_token_estimate_counts_characters_and_overhead() -> None:
    assert estimate_tokens("") == 4
    assert estimate_tokens("abcd") == 5
    assert estimate_tokens("abcde") == 6


def _recount(context: AgentContext) -> int:
    """The estimate of everything the context holds, counted independently."""
    texts: list[str] = []
    if context.latest_inbound is not None:
        texts.append(context.latest_inbound.text)
    if context.workflow is not None:
        workflow = context.workflow
        texts.append(json.dumps(dict(workflow.data)) + workflow.flow + workflow.step)
    texts += [f"{name}: {json.dumps(value)}" for name, value in context.pending_tools.items()]
    texts += [f"{fact.key}: {fact.value}" for fact in context.facts]
    texts += [hit.content for hit in context.knowledge]
    texts += [message.text for message in context.messages]
    texts += [context.summary] if context.summary else []
    texts += [f"{name}: {json.dumps(value)}" for name, value in context.scratch.items()]
    return sum(estimate_tokens(text) for text in texts)
