"""The AI agent consumer on real Redis and Postgres, the real SDK against the scripted server:
text answers, tool steps through the real gateway, failures, stale turns."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from consumers import discover, select
from consumers.ai_agent import agent_handler
from events.streams import TOOLS_CALL_REQUESTED
from events.types.reply_parts import ReplyText
from libs.errors import Drop
from libs.keys import KeySpace
from libs.streams import Received
from memory_manager import KnowledgeBase, MemoryConfig, build_embedder
from tests.ai_agent_support import (
    FAST_LLM,
    add_inbound,
    audited_calls,
    handoff,
    open_turn,
    published,
    replies,
    resources_for,
    running_consumers,
    settings_for,
    wait_for_replies,
)
from tests.llm_script import Call, SeenRequest, Text, ToolCalls, Usage, server_error
from tests.llm_server import ScriptedOpenAIServer
from tests.streams_support import eventually
from tests.tool_support import SeededConversation, seed_conversation
from tool_gateway.config import FALLBACK_TEXTS

SUPPORT = {"tenant": "acme", "profile": "support", "tools": ["knowledge.search"]}
RETURNS = "Devoluções: você pode devolver qualquer produto em até 30 dias, sem custo."


@pytest.fixture
async def server() -> AsyncIterator[ScriptedOpenAIServer]:
    async with ScriptedOpenAIServer() as running:
        yield running


@pytest.fixture
async def seeded(pg_pool: asyncpg.Pool) -> SeededConversation:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "Posso devolver um produto?"})
    return seeded


async def test_a_text_answer_is_one_reply_with_the_models_text_and_usage(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [SUPPORT])
    server.script(Text("Sim, em até 30 dias.", usage=Usage(42, 7)))
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    assert reply.parts == (ReplyText(text="Sim, em até 30 dias."),)
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (42, 7)  # type: ignore[union-attr]
    assert (reply.turn_id, reply.fencing_token, reply.handoff) == (seeded.turn_id, 1, False)
    assert reply.reply_id == f"{seeded.turn_id}:1:reply"
    assert reply.agent_profile == "support"
    [seen] = server.requests
    assert seen.contents("user") == ["Posso devolver um produto?"]
    assert seen.tool_names == ["knowledge__search"]


async def test_a_tool_step_goes_through_the_gateway_and_the_model_sees_its_result(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    await KnowledgeBase(pg_pool, build_embedder(MemoryConfig())).ingest("acme", "returns", RETURNS)
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [SUPPORT])

    def answer_from_the_tool(seen: SeenRequest) -> Text:
        [result] = seen.contents("tool")
        return Text(f"Segundo a loja: {json.loads(result)['hits'][0]['content']}")

    server.script(
        ToolCalls(Call("knowledge__search", {"query": "devolver produto"}, id="call-kb")),
        answer_from_the_tool,
    )
    async with running_consumers(resources, with_gateway=True):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    assert await audited_calls(pg_pool) == [
        (f"{seeded.turn_id}:call-kb", "knowledge.search", {"query": "devolver produto"})
    ]
    [reply] = await replies(redis, keys)
    assert reply.parts == (ReplyText(text=f"Segundo a loja: {RETURNS}"),)
    _first, second = server.requests
    assert [m["role"] for m in second.messages[-3:]] == ["user", "assistant", "tool"]
    assert second.messages[-1]["tool_call_id"] == "call-kb"


async def test_parallel_calls_resume_the_model_only_once_both_results_are_in(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [SUPPORT])
    server.script(
        ToolCalls(
            Call("knowledge__search", {"query": "devolução"}, id="call-a"),
            Call("knowledge__search", {"query": "frete"}, id="call-b"),
        ),
        Text("Aqui está o que encontrei."),
    )
    async with running_consumers(resources, with_gateway=True):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    assert len(server.requests) == 2, "one call per step: never resumed on a partial step"
    tool_ids = [m["tool_call_id"] for m in server.requests[1].messages if m["role"] == "tool"]
    assert tool_ids == ["call-a", "call-b"]
    [reply] = await replies(redis, keys)
    assert reply.parts == (ReplyText(text="Aqui está o que encontrei."),)


async def test_a_failing_model_falls_back_and_hands_off_then_its_breaker_stops_calls(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [SUPPORT])
    server.script(server_error(), server_error())
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)
        await add_inbound(pg_pool, seeded, 2, {"kind": "text", "text": "alô?"})
        await open_turn(pg_pool, seeded, "acme-turn-2", 2, 2)
        await resources.publisher.publish(handoff(seeded, 2, turn_id="acme-turn-2", token=2))
        await wait_for_replies(redis, keys, 2)

    unavailable, circuit_open = sorted(await replies(redis, keys), key=lambda r: r.fencing_token)
    for reply in (unavailable, circuit_open):
        assert reply.handoff
        assert reply.parts == (ReplyText(text=FALLBACK_TEXTS["pt"]),)
    assert "unavailable" in (unavailable.handoff_reason or "")
    assert "circuit breaker is open" in (circuit_open.handoff_reason or "")
    assert len(server.requests) == 2, "the open breaker sent nothing"


async def test_a_turn_with_a_stale_token_publishes_nothing(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [SUPPORT])
    await open_turn(pg_pool, seeded, "acme-turn-2", 2, 1)
    handler = agent_handler(resources, llm=FAST_LLM)
    stale = handoff(seeded, 1)
    try:
        with pytest.raises(Drop, match="superseded"):
            await handler(Received(stale, stale.stream, 0, "1-0", 1, "ai-agent"))
    finally:
        await handler.aclose()  # type: ignore[attr-defined]
    assert server.requests == []
    assert await replies(redis, keys) == []


def test_the_consumer_is_discovered_on_both_streams_and_needs_postgres() -> None:
    [found] = select(discover(), ["ai-agent"])
    assert found.streams == ("routing.handoff.requested", "tools.call.completed")
    assert "postgres" in found.tags


async def test_an_interrupted_turns_pending_call_is_superseded_in_the_next_turns_history(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [SUPPORT])
    server.script(
        ToolCalls(Call("knowledge__search", {"query": "devolução"}, id="call-late")),
        Text("Claro, vamos cancelar."),
    )
    # No gateway runs: the call stays pending when the contact writes again (interrupt).
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))

        async def requested() -> bool:
            return len(await published(redis, keys, TOOLS_CALL_REQUESTED)) == 1

        await eventually(requested, what="the first turn's tool call")
        await add_inbound(pg_pool, seeded, 2, {"kind": "text", "text": "esquece, quero cancelar"})
        await open_turn(pg_pool, seeded, "acme-turn-2", 2, 1)
        await resources.publisher.publish(handoff(seeded, 1, 2, turn_id="acme-turn-2", token=2))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    assert (reply.turn_id, reply.parts) == (
        "acme-turn-2",
        (ReplyText(text="Claro, vamos cancelar."),),
    )
    history = server.requests[1].messages
    assert [m["role"] for m in history[1:]] == ["user", "assistant", "tool", "user"]
    assert (history[3]["tool_call_id"], json.loads(history[3]["content"])) == (
        "call-late",
        {"error": "superseded"},
    )
    assert server.requests[1].contents("user") == [
        "Posso devolver um produto?",
        "esquece, quero cancelar",
    ]
