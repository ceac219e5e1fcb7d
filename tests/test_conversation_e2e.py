"""End to end through the real ingress: signed webhooks in, one answer out at the provider.

Each test asserts the loop's invariants from Postgres and the provider servers' logs: one reply
per turn, nothing answered that must not be, and what the turn did (tools, statuses) stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from libs.keys import KeySpace
from memory_manager import KnowledgeBase, MemoryConfig, build_embedder
from tests.business_seed import future_day, seed_schedule
from tests.llm_script import Call, SeenRequest, Text, ToolCalls, server_error
from tests.loop_world import TENANT, World, world_running
from tests.streams_support import eventually
from tool_gateway.config import FALLBACK_TEXTS

PRICES = "Quanto custa uma limpeza? A limpeza dental custa R$ 180 e leva 40 minutos."
HOURS = "Qual o horário da clínica? Atendemos de segunda a sexta, das 8h às 19h."


@pytest.fixture
async def world(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[World]:
    options: dict[str, Any] = getattr(request, "param", {})
    async with world_running(redis, keys, pg_pool, tmp_path, **options) as running:
        yield running


async def _completed_turns(world: World, count: int) -> None:
    async def done() -> bool:
        statuses = await world.turn_statuses()
        return len(statuses) == count and all(s != "opened" for s in statuses)

    await eventually(done, timeout_s=20, what=f"{count} turn(s) to close")


async def _faq(pool: asyncpg.Pool) -> None:
    knowledge = KnowledgeBase(pool, build_embedder(MemoryConfig()))
    await knowledge.ingest(TENANT, "faq/prices", PRICES)
    await knowledge.ingest(TENANT, "faq/hours", HOURS)


async def test_one_trace_id_runs_from_the_webhook_to_the_model_and_the_reply_sent(
    world: World,
) -> None:
    world.llm.script(Text("Olá! Como posso ajudar?"))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    status, _ = await world.post_generic("Oi", traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    assert status == 200
    await _completed_turns(world, 1)

    (sent,) = world.app.requests
    assert sent.headers["traceparent"].split("-")[1] == trace_id
    (asked,) = world.llm.requests
    assert asked.contents("user")[-1] == "Oi"
    assert asked.headers["traceparent"].split("-")[1] == trace_id, "the model call too"


async def test_the_same_webhook_twice_gets_one_reply(world: World) -> None:
    world.llm.script(Text("Olá!"), Text("a second answer must never be asked for"))
    first = await world.post_generic("Oi", message_id="m-dup")
    again = await world.post_generic("Oi", message_id="m-dup")
    assert (first[0], again[0]) == (200, 200), "a duplicate is acknowledged, not refused"
    await _completed_turns(world, 1)
    await asyncio.sleep(0.3)  # a second turn, if any, would show by now
    assert len(world.app.requests) == 1
    assert len(world.llm.requests) == 1
    assert await world.pool.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'") == 1


async def test_a_whatsapp_message_is_answered_and_its_status_webhooks_start_no_turn(
    world: World,
) -> None:
    world.llm.script(Text("Olá! Temos horários amanhã."))
    status, _ = await world.post_whatsapp_text("Tem horário amanhã?", wa_id="5511987654321")
    assert status == 200
    await _completed_turns(world, 1)
    (sent,) = world.graph.requests
    assert sent.json()["to"] == "5511987654321"
    assert sent.json()["text"]["body"] == "Olá! Temos horários amanhã."
    wamid = await world.pool.fetchval(
        "SELECT provider_message_id FROM messages WHERE direction = 'out'"
    )

    statuses = [
        {"id": wamid, "status": name, "timestamp": "1717430501", "recipient_id": "5511987654321"}
        for name in ("delivered", "read")
    ]
    status, _ = await world.post_whatsapp({"statuses": statuses})
    assert status == 200

    async def read() -> bool:
        found = await world.pool.fetchval(
            "SELECT delivery_status FROM messages WHERE provider_message_id = $1", wamid
        )
        return bool(found == "read")

    await eventually(read, what="the reply to be marked read")
    await asyncio.sleep(0.3)  # a wrongly started turn would show by now
    assert await world.turn_statuses() == ["completed"]
    assert len(world.llm.requests) == 1
    assert len(world.graph.requests) == 1


async def test_a_chatwoot_agents_outgoing_message_starts_no_turn(world: World) -> None:
    outgoing = {
        "event": "message_created",
        "id": 4024,
        "content": "Olá Ana, vou verificar.",
        "created_at": "2024-05-01T12:03:00.000Z",
        "message_type": "outgoing",
        "content_type": "text",
        "content_attributes": {},
        "private": False,
        "sender": {"id": 2, "name": "Atendente", "type": "user"},
        "inbox": {"id": 7, "name": "Site"},
        "conversation": {"id": 58, "inbox_id": 7, "status": "open"},
        "account": {"id": 1, "name": "Clínica"},
    }
    status, _ = await world.post_chatwoot(outgoing)
    assert status == 200
    await asyncio.sleep(0.5)  # nothing is published, so nothing can be awaited
    assert await world.turn_statuses() == []
    assert await world.pool.fetchval("SELECT count(*) FROM messages") == 0
    assert world.llm.requests == []
    assert world.chatwoot.requests == []


async def test_a_question_the_knowledge_base_answers_reaches_the_model_with_the_passage(
    world: World,
) -> None:
    await _faq(world.pool)
    world.llm.script(lambda seen: Text("R$ 180." if PRICES in _system(seen) else "Não sei."))
    await world.post_generic("quanto custa uma limpeza?")
    await _completed_turns(world, 1)
    (sent,) = world.app.requests
    assert sent.json()["parts"][0]["text"] == "R$ 180.", "the passage was in the prompt"


@pytest.mark.parametrize("world", [{"profile": {"provider": "local"}}], indirect=True)
async def test_offline_the_knowledge_base_answers_a_question_without_any_model(
    world: World,
) -> None:
    await _faq(world.pool)
    await world.post_generic("qual o horário da clínica?")
    await _completed_turns(world, 1)
    (sent,) = world.app.requests
    assert HOURS in sent.json()["parts"][0]["text"]
    assert world.llm.requests == []


@pytest.mark.parametrize(
    "world",
    [{"profile": {"tools": ["appointments.find_slots", "appointments.book"], "max_tool_steps": 3}}],
    indirect=True,
)
async def test_booking_takes_two_tool_steps_and_the_appointment_is_in_postgres(
    world: World,
) -> None:
    await seed_schedule(world.pool, TENANT, windows=[(d, time(9), time(12)) for d in range(1, 8)])
    day = future_day(7)

    def book_first_slot(seen: SeenRequest) -> ToolCalls:
        slots = json.loads(seen.contents("tool")[-1])["slots"]
        first = slots[0]
        arguments = {
            "service": "haircut",
            "resource_id": first["resource_id"],
            "starts_at": first["starts_at"],
        }
        return ToolCalls(Call("appointments__book", arguments, id="call-book"))

    def confirm(seen: SeenRequest) -> Text:
        booked = json.loads(seen.contents("tool")[-1])
        return Text(f"Marcado: {booked['starts_at']} com {booked['resource']}.")

    world.llm.script(
        ToolCalls(
            Call("appointments__find_slots", {"service": "haircut", "from_date": str(day)}, id="c1")
        ),
        book_first_slot,
        confirm,
    )
    await world.post_generic("quero marcar um corte na semana que vem")
    await _completed_turns(world, 1)

    appointment = await world.pool.fetchrow(
        "SELECT a.starts_at, a.status, c.display_name FROM appointments a"
        " JOIN contacts c USING (tenant_id, contact_id)"
    )
    assert appointment is not None
    assert appointment["display_name"] == "Ana"
    (sent,) = world.app.requests
    assert sent.json()["parts"][0]["text"].startswith("Marcado: ")
    assert "com Ana." in sent.json()["parts"][0]["text"]
    audit = await world.pool.fetch("SELECT tool, outcome FROM tool_calls ORDER BY created_at")
    assert [(r["tool"], r["outcome"]) for r in audit] == [
        ("appointments.find_slots", "succeeded"),
        ("appointments.book", "succeeded"),
    ]
    assert len(world.llm.requests) == 3


@pytest.mark.parametrize(
    "world",
    [{"llm_settings": {"breaker_fail_max": 2, "breaker_reset_timeout_s": 1}}],
    indirect=True,
)
async def test_a_failing_model_opens_its_breaker_and_the_breaker_closes_once_it_answers(
    world: World,
) -> None:
    world.llm.script(server_error(), server_error())
    await world.post_generic("oi", user="u-1")
    await _completed_turns(world, 1)
    assert len(world.llm.requests) == 2, "two attempts, two failures: the breaker opens"

    await world.post_generic("oi", user="u-2")
    await _completed_turns(world, 2)
    assert len(world.llm.requests) == 2, "the open breaker called nothing"
    fallbacks = [r.json()["parts"][0]["text"] for r in world.app.requests]
    assert fallbacks == [FALLBACK_TEXTS["pt"]] * 2, "never silence"
    assert await world.turn_statuses() == ["handed_off", "handed_off"]

    await asyncio.sleep(1.2)  # the breaker's reset timeout: the next call is its trial
    world.llm.script(Text("Voltei! Como posso ajudar?"), Text("Claro."))
    await world.post_generic("oi de novo", user="u-3")
    await _completed_turns(world, 3)
    await world.post_generic("e agora?", user="u-4")
    await _completed_turns(world, 4)
    answers = [r.json()["parts"][0]["text"] for r in world.app.requests[2:]]
    assert answers == ["Voltei! Como posso ajudar?", "Claro."]
    assert (await world.turn_statuses())[2:] == ["completed", "completed"]


def _system(seen: SeenRequest) -> str:
    return "\n".join(seen.contents("system"))
