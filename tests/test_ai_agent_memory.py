"""What the agent remembers: facts the model saves through ``remember_fact`` (and, in
``test_ai_agent_summaries``, a summary every N turns), applied by the memory manager."""

from __future__ import annotations

import json

import asyncpg
import redis.asyncio as aioredis

from events.streams import MEMORY_UPDATE_REQUESTED, TOOLS_CALL_REQUESTED
from events.types.reply_parts import ReplyText
from libs.keys import KeySpace
from tests.ai_agent_support import (
    add_inbound,
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
