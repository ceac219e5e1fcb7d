"""Where the agent stops: too many tool rounds, unusable tool calls, redelivered turns."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from consumers.ai_agent import agent_handler
from events.streams import TOOLS_CALL_REQUESTED
from events.types.reply_parts import ReplyText
from libs.errors import Drop
from libs.keys import KeySpace
from libs.streams import Received
from tests.ai_agent_support import (
    FAST_LLM,
    add_inbound,
    audited_calls,
    handoff,
    published,
    replies,
    resources_for,
    running_consumers,
    settings_for,
    wait_for_replies,
)
from tests.llm_script import Call, Text, ToolCalls
from tests.llm_server import ScriptedOpenAIServer
from tests.tool_support import SeededConversation, seed_conversation
from tool_gateway.config import FALLBACK_TEXTS

SUPPORT = {"tenant": "acme", "profile": "support", "tools": ["knowledge.search"]}


@pytest.fixture
async def server() -> AsyncIterator[ScriptedOpenAIServer]:
    async with ScriptedOpenAIServer() as running:
        yield running


@pytest.fixture
async def seeded(pg_pool: asyncpg.Pool) -> SeededConversation:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "meu pedido chegou?"})
    return seeded


async def test_more_tool_rounds_than_the_profile_allows_end_in_a_handoff(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    one_round = SUPPORT | {"max_tool_steps": 1}
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [one_round])
    server.script(
        ToolCalls(Call("knowledge__search", {"query": "pedido"}, id="call-1")),
        ToolCalls(Call("knowledge__search", {"query": "entrega"}, id="call-2")),
    )
    async with running_consumers(resources, with_gateway=True):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    assert reply.handoff
    assert "max_tool_steps (1)" in (reply.handoff_reason or "")
    assert [key for key, _tool, _arguments in await audited_calls(pg_pool)] == [
        f"{seeded.turn_id}:call-1"
    ]


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (Call("knowledge__search", "{not json", id="c1"), "not valid JSON"),
        (Call("knowledge__search", "[1, 2]", id="c1"), "must be a JSON object"),
        (Call("knowledge__search", {"query": "x"}, id="call one"), "holds a space"),
    ],
)
async def test_an_unusable_tool_call_ends_in_the_fallback_and_a_handoff(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
    call: Call,
    reason: str,
) -> None:
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [SUPPORT])
    server.script(ToolCalls(call))
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    assert reply.handoff
    assert reason in (reply.handoff_reason or "")
    assert reply.parts[0] == ReplyText(text=FALLBACK_TEXTS["pt"])
    assert await published(redis, keys, TOOLS_CALL_REQUESTED) == []


async def test_a_function_that_is_no_tool_is_answered_with_an_error_and_the_model_answers(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [SUPPORT])
    server.script(
        ToolCalls(Call("orders__teleport", {"order_id": 7}, id="c1")),
        lambda seen: Text("Sem essa ferramenta: " + seen.contents("tool")[-1]),
    )
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    assert not reply.handoff
    [part] = reply.parts
    assert isinstance(part, ReplyText)
    assert "there is no tool named 'orders__teleport'" in part.text
    assert await published(redis, keys, TOOLS_CALL_REQUESTED) == [], "nothing to ask the gateway"


async def test_a_model_that_keeps_calling_a_forbidden_tool_ends_at_the_step_cap(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    two_rounds = SUPPORT | {"max_tool_steps": 2}
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [two_rounds])
    forbidden = Call("appointments__cancel", {"appointment_id": "a-1"})
    server.script(ToolCalls(forbidden), ToolCalls(forbidden), ToolCalls(forbidden))
    async with running_consumers(resources, with_gateway=True):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    assert reply.handoff
    assert "max_tool_steps (2)" in (reply.handoff_reason or "")
    outcomes = await pg_pool.fetch("SELECT tool, outcome, error_code FROM tool_calls")
    refused = ("appointments.cancel", "denied", "not_allowed")
    assert [tuple(row) for row in outcomes] == [refused, refused]


async def test_a_redelivered_turn_does_not_ask_the_model_again(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    server: ScriptedOpenAIServer,
    seeded: SeededConversation,
) -> None:
    resources = resources_for(redis, keys, pg_pool, settings_for(server), [SUPPORT])
    server.script(Text("Chegou ontem."), Text("never asked"))
    handler = agent_handler(resources, llm=FAST_LLM)
    turn = handoff(seeded, 1)
    delivery = Received(turn, turn.stream, 0, "1-0", 1, "ai-agent")
    try:
        await handler(delivery)
        with pytest.raises(Drop, match="answered or superseded"):
            await handler(delivery._replace(attempt=2))
    finally:
        await handler.aclose()  # type: ignore[attr-defined]
    assert len(server.requests) == 1
    assert [reply.parts for reply in await replies(redis, keys)] == [
        (ReplyText(text="Chegou ontem."),)
    ]
