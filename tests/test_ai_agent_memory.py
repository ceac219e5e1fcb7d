"""What the agent remembers: facts the model saves through ``remember_fact``, and a summary
every N turns made after the reply is out; both applied by the memory manager."""

from __future__ import annotations

import json

import asyncpg
import redis.asyncio as aioredis

from events.streams import MEMORY_UPDATE_REQUESTED, TOOLS_CALL_REQUESTED
from events.types.reply_parts import ReplyText
from libs.keys import KeySpace
from tests.ai_agent_support import (
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
from tests.llm_script import Call, SeenRequest, Text, ToolCalls, server_error
from tests.llm_server import ScriptedOpenAIServer
from tests.streams_support import eventually
from tests.tool_support import seed_conversation

REMEMBERS = {"tenant": "acme", "profile": "support", "remember_facts": True}


async def _facts(pool: asyncpg.Pool) -> dict[str, tuple[str, str]]:
    rows = await pool.fetch("SELECT key, value, source FROM facts")
    return {row["key"]: (json.loads(row["value"]), row["source"]) for row in rows}


async def test_a_fact_the_model_saves_is_in_postgres_and_the_model_reads_saved(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "prefiro ser atendida à tarde"})
    async with ScriptedOpenAIServer() as server:
        resources = resources_for(redis, keys, pg_pool, settings_for(server), [REMEMBERS])
        server.script(
            ToolCalls(
                Call("remember_fact", {"key": "contact.preferred_period", "value": "tarde"}),
                Call("remember_fact", {"key": "Not A Key", "value": "x"}),
            ),
            lambda seen: Text("Anotado: " + " | ".join(seen.contents("tool"))),
        )
        async with running_consumers(resources, with_memory=True):
            await resources.publisher.publish(handoff(seeded, 1))
            await wait_for_replies(redis, keys, 1)

            async def remembered() -> bool:
                return "contact.preferred_period" in await _facts(pg_pool)

            await eventually(remembered, what="the fact in Postgres")

    first = server.requests[0]
    assert "remember_fact" in first.tool_names
    assert await _facts(pg_pool) == {"contact.preferred_period": ("tarde", "agent")}
    [reply] = await replies(redis, keys)
    assert not reply.handoff
    [part] = reply.parts
    assert isinstance(part, ReplyText)
    saved, refused = part.text.removeprefix("Anotado: ").split(" | ")
    assert json.loads(saved) == {"saved": True, "key": "contact.preferred_period"}
    assert json.loads(refused)["error"] == "invalid_arguments", "the model may correct it"
    [update] = await published(redis, keys, MEMORY_UPDATE_REQUESTED)
    assert (update.payload.turn_id, update.payload.fencing_token) == (seeded.turn_id, 1)
    assert await published(redis, keys, TOOLS_CALL_REQUESTED) == [], "not a gateway tool"


async def test_without_the_profile_allowing_it_remember_fact_is_neither_offered_nor_run(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "meu nome é Ana"})
    plain = REMEMBERS | {"remember_facts": False}
    async with ScriptedOpenAIServer() as server:
        resources = resources_for(redis, keys, pg_pool, settings_for(server), [plain])
        server.script(
            ToolCalls(Call("remember_fact", {"key": "contact.name", "value": "Ana"})),
            lambda seen: Text(seen.contents("tool")[-1]),
        )
        async with running_consumers(resources, with_memory=True):
            await resources.publisher.publish(handoff(seeded, 1))
            await wait_for_replies(redis, keys, 1)

    assert "remember_fact" not in server.requests[0].tool_names
    [reply] = await replies(redis, keys)
    [part] = reply.parts
    assert isinstance(part, ReplyText)
    assert "there is no tool named 'remember_fact'" in part.text
    assert await published(redis, keys, MEMORY_UPDATE_REQUESTED) == []
    assert await _facts(pg_pool) == {}


async def _close_turn(pool: asyncpg.Pool, turn_id: str) -> None:
    """Mark a turn answered, as delivery does once its reply is sent."""
    await pool.execute(
        "UPDATE turns SET status = 'completed', closed_at = now() WHERE turn_id = $1", turn_id
    )


async def _summary(pool: asyncpg.Pool) -> str | None:
    value = await pool.fetchval(
        "SELECT string_agg(content, '' ORDER BY chunk_index) FROM memory_chunks"
        " WHERE source_kind = 'summary' AND document_key LIKE 'summary:%'"
    )
    return str(value) if value is not None else None


async def test_every_second_turn_is_summarized_after_its_reply_is_out(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "quero marcar uma limpeza"})
    every_two = REMEMBERS | {"remember_facts": False, "summary_every_turns": 2}
    replies_seen_by_summary: list[int] = []

    async def summarize(seen: SeenRequest) -> Text:
        # The moment the summary is asked for, the second turn's reply is already published.
        replies_seen_by_summary.append(len(await replies(redis, keys)))
        return Text("Cliente quer marcar uma limpeza na sexta de manhã.")

    async with ScriptedOpenAIServer() as server:
        resources = resources_for(redis, keys, pg_pool, settings_for(server), [every_two])
        server.script(Text("Claro! Qual dia?"), Text("Sexta de manhã, anotado."), summarize)
        async with running_consumers(resources, with_memory=True):
            await resources.publisher.publish(handoff(seeded, 1))
            await wait_for_replies(redis, keys, 1)
            await _close_turn(pg_pool, seeded.turn_id)
            await add_inbound(pg_pool, seeded, 2, {"kind": "text", "text": "sexta de manhã"})
            await open_turn(pg_pool, seeded, "acme-turn-2", 2, 2)
            await resources.publisher.publish(handoff(seeded, 2, turn_id="acme-turn-2", token=2))
            await wait_for_replies(redis, keys, 2)

            async def summarized() -> bool:
                return await _summary(pg_pool) is not None

            await eventually(summarized, what="the summary chunk")

    assert len(server.requests) == 3, "one summary, after the second turn only"
    assert replies_seen_by_summary == [2]
    material = server.requests[2].contents("user")[-1]
    assert "Customer: quero marcar uma limpeza" in material
    assert "Assistant: Sexta de manhã, anotado." in material
    assert await _summary(pg_pool) == "Cliente quer marcar uma limpeza na sexta de manhã."
    [update] = await published(redis, keys, MEMORY_UPDATE_REQUESTED)
    assert (update.payload.turn_id, update.payload.fencing_token) == ("acme-turn-2", 2)


async def test_a_failing_summary_leaves_the_reply_as_it_was(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "oi"})
    every_turn = REMEMBERS | {"remember_facts": False, "summary_every_turns": 1}
    async with ScriptedOpenAIServer() as server:
        resources = resources_for(redis, keys, pg_pool, settings_for(server), [every_turn])
        server.script(Text("Olá!"), server_error(), server_error())
        async with running_consumers(resources, with_memory=True):
            await resources.publisher.publish(handoff(seeded, 1))
            await wait_for_replies(redis, keys, 1)

            async def asked_twice() -> bool:
                return server.steps_left == 0

            await eventually(asked_twice, what="the summary's two attempts")

    [reply] = await replies(redis, keys)
    assert (reply.handoff, reply.parts) == (False, (ReplyText(text="Olá!"),))
    assert await published(redis, keys, MEMORY_UPDATE_REQUESTED) == []


async def test_a_fact_beside_a_gateway_call_in_one_step_makes_a_valid_history(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(
        pg_pool, seeded, 1, {"kind": "text", "text": "sou a Ana, vocês abrem sábado?"}
    )
    both = REMEMBERS | {"tools": ["knowledge.search"]}
    async with ScriptedOpenAIServer() as server:
        resources = resources_for(redis, keys, pg_pool, settings_for(server), [both])
        server.script(
            ToolCalls(
                Call("remember_fact", {"key": "contact.name", "value": "Ana"}, id="c-fact"),
                Call("knowledge__search", {"query": "sábado"}, id="c-search"),
            ),
            Text("Olá Ana! Abrimos aos sábados de manhã."),
        )
        async with running_consumers(resources, with_gateway=True, with_memory=True):
            await resources.publisher.publish(handoff(seeded, 1))
            await wait_for_replies(redis, keys, 1)

            async def remembered() -> bool:
                return "contact.name" in await _facts(pg_pool)

            await eventually(remembered, what="the fact in Postgres")

    [reply] = await replies(redis, keys)
    assert not reply.handoff, "the scripted server refuses a history OpenAI would refuse"
    second = server.requests[1]
    tail = second.messages[-3:]
    assert [m["role"] for m in tail] == ["assistant", "tool", "tool"]
    assert {m["tool_call_id"] for m in tail[1:]} == {"c-fact", "c-search"}
    [(_key, tool, _arguments)] = await audited_calls(pg_pool)
    assert tool == "knowledge.search", "only the gateway tool went to the gateway"
