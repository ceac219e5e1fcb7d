"""The whole loop in one process: an inbound message in, exactly one answer out at the app.

Dispatcher, AI agent, tool gateway and delivery run as the worker runs them, on real Redis and
Postgres; the LLM is the scripted OpenAI-compatible server (real SDK), the channel a local
generic app that checks signatures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from channels.config import ChannelsConfig
from channels.directory import record_tenants_and_channels
from consumers.ai_agent import consumer as agent_consumer
from consumers.delivery import consumer as delivery_consumer
from consumers.dispatcher import consumer as dispatcher_consumer
from consumers.tool_gateway import consumer as gateway_consumer
from dispatcher.config import ConversationsConfig
from events.catalog import CATALOG
from events.envelope import Envelope
from events.types.inbound_content import InboundText
from events.types.inbox import ContactIdentity, InboxMessageReceived
from libs.keys import KeySpace
from libs.resources import Resources
from libs.streams import Publisher
from libs.yaml_config import load_yaml_model
from tests.ai_agent_support import FAST_LLM, settings_for
from tests.consumer_support import consumers_running
from tests.llm_script import Call, Text, ToolCalls, server_error
from tests.llm_server import ScriptedOpenAIServer
from tests.provider_servers import GenericAppServer
from tests.streams_support import eventually
from tool_gateway.config import FALLBACK_TEXTS, AgentProfilesConfig

TENANT, CHANNEL, CONTACT = "clinic", "app", "contact-9"
SECRET = "app-secret-for-tests"


@dataclass
class Loop:
    app: GenericAppServer
    llm: ScriptedOpenAIServer
    publisher: Publisher
    pool: asyncpg.Pool


def inbound(seq: int, text: str) -> Envelope[InboxMessageReceived]:
    return Envelope.new(
        InboxMessageReceived(
            channel_id=CHANNEL,
            provider="generic",
            provider_message_id=f"msg-{seq}",
            seq=seq,
            contact=ContactIdentity(provider_user_id=CONTACT, display_name="Ana"),
            message=InboundText(text=text),
            received_at=datetime.now(UTC),
        ),
        tenant_id=TENANT,
        conversation_id=f"{CHANNEL}:{CONTACT}",
    )


@pytest.fixture
async def loop(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Loop]:
    options: dict[str, Any] = getattr(request, "param", {})
    async with GenericAppServer(SECRET) as app, ScriptedOpenAIServer() as llm:
        path = tmp_path / "atende.yaml"
        path.write_text(
            f"tenants:\n  - id: {TENANT}\n    channels:\n      - id: {CHANNEL}\n"
            f"        provider: generic\n        callback_url: {app.callback_url}\n"
            "        secrets:\n          signing_secret: {env: APP_SECRET}\n"
        )
        channels = load_yaml_model(path, ChannelsConfig, {"APP_SECRET": SECRET})
        async with pg_pool.acquire() as conn:
            await record_tenants_and_channels(conn, channels)
        profile = {"tenant": TENANT, "profile": "triage", "model": "gpt-test"}
        agents = AgentProfilesConfig.model_validate(
            [{**profile, "provider": "openai", **options.get("profile", {})}]
        )
        sections = {
            "tenants": channels,
            "agents": agents,
            "conversations": ConversationsConfig.model_validate(options.get("conversations", {})),
            "llm": FAST_LLM,
        }
        settings = settings_for(llm)
        publisher = Publisher(redis, keys, partitions=settings.stream_partitions)
        resources = Resources(settings, redis, keys, CATALOG, publisher, pg_pool, sections)
        consumers = [dispatcher_consumer, agent_consumer, gateway_consumer, delivery_consumer]
        if options.get("without_gateway"):
            consumers.remove(gateway_consumer)  # tool calls stay pending until the test says
        async with consumers_running(consumers, resources):
            yield Loop(app, llm, publisher, pg_pool)


async def test_a_message_gets_exactly_one_answer_at_the_app(loop: Loop) -> None:
    loop.llm.script(Text("Olá Ana! Temos horários na sexta de manhã."))
    event = inbound(1, "Oi, vocês têm horário na sexta?")
    await loop.publisher.publish_many([event, event])  # the same webhook twice

    async def answered() -> bool:
        status = await loop.pool.fetchval("SELECT status FROM turns LIMIT 1")
        return bool(status == "completed")

    await eventually(answered, timeout_s=20, what="the turn to be answered and closed")
    assert len(loop.app.requests) == 1, "one reply reached the app"
    body = loop.app.requests[0].json()
    assert body["parts"][0]["text"] == "Olá Ana! Temos horários na sexta de manhã."
    (request,) = loop.llm.requests
    assert "Oi, vocês têm horário na sexta?" in request.contents("user")
    rows = await loop.pool.fetch(
        "SELECT direction, delivery_status FROM messages ORDER BY direction"
    )
    assert [(r["direction"], r["delivery_status"]) for r in rows] == [("in", None), ("out", "sent")]


async def conversation_status(pool: asyncpg.Pool) -> str:
    return str(await pool.fetchval("SELECT status FROM conversations LIMIT 1"))


async def test_the_model_failing_answers_the_fallback_and_hands_off(loop: Loop) -> None:
    loop.llm.script(server_error(), server_error())
    await loop.publisher.publish(inbound(1, "Oi, preciso de ajuda"))

    async def handed_off() -> bool:
        return await conversation_status(loop.pool) == "human"

    await eventually(handed_off, timeout_s=20, what="the conversation to go to a human")
    (sent,) = loop.app.requests
    assert sent.json()["parts"][0]["text"] == FALLBACK_TEXTS["pt"], "never silence"
    turn = await loop.pool.fetchrow("SELECT status, note FROM turns")
    assert turn is not None
    assert turn["status"] == "handed_off"
    assert "unavailable" in (turn["note"] or "")


async def test_asking_for_a_person_hands_off_without_the_model_and_the_ai_then_stays_silent(
    loop: Loop,
) -> None:
    await loop.publisher.publish(inbound(1, "quero falar com um atendente"))

    async def handed_off() -> bool:
        return await conversation_status(loop.pool) == "human" and len(loop.app.requests) == 1

    await eventually(handed_off, timeout_s=20, what="the handoff")
    await loop.publisher.publish(inbound(2, "alô?"))

    async def stored() -> bool:
        return bool(await loop.pool.fetchval("SELECT count(*) FROM messages WHERE seq = 2"))

    await eventually(stored, what="the second message to be stored")
    await asyncio.sleep(0.5)
    assert loop.llm.requests == [], "the model was never asked"
    assert len(loop.app.requests) == 1, "the AI stays silent while a human holds it"


@pytest.mark.parametrize(
    "loop", [{"profile": {"tools": ["knowledge.search"], "max_tool_steps": 3}}], indirect=True
)
async def test_a_tool_step_runs_through_the_gateway_and_the_answer_sees_its_result(
    loop: Loop,
) -> None:
    loop.llm.script(
        ToolCalls(Call("knowledge__search", {"query": "horário de sexta"}, id="call-1")),
        lambda seen: Text(f"Consultei: {len(seen.contents('tool'))} resultado(s)."),
    )
    await loop.publisher.publish(inbound(1, "Que horas vocês abrem na sexta?"))

    async def answered() -> bool:
        status = await loop.pool.fetchval("SELECT status FROM turns LIMIT 1")
        return bool(status == "completed")

    await eventually(answered, timeout_s=20, what="the answer after the tool step")
    first, second = loop.llm.requests
    assert "knowledge__search" in first.tool_names
    assert [m["role"] for m in second.messages][-2:] == ["assistant", "tool"]
    (sent,) = loop.app.requests
    assert sent.json()["parts"][0]["text"] == "Consultei: 1 resultado(s)."
    audit = await loop.pool.fetchrow("SELECT tool, outcome FROM tool_calls")
    assert audit is not None
    assert (audit["tool"], audit["outcome"]) == ("knowledge.search", "succeeded")


@pytest.mark.parametrize(
    "loop",
    [{"conversations": {"defaults": {"double_text": "merge", "merge_window_ms": 300}}}],
    indirect=True,
)
async def test_three_quick_messages_with_merge_get_one_answer_that_saw_all_three(
    loop: Loop,
) -> None:
    loop.llm.script(lambda seen: Text(" | ".join(seen.contents("user"))))
    for seq, text in enumerate(("oi", "tudo bem?", "quero marcar uma limpeza"), start=1):
        await loop.publisher.publish(inbound(seq, text))

    async def answered() -> bool:
        return len(loop.app.requests) == 1

    await eventually(answered, timeout_s=20, what="the merged answer")
    await asyncio.sleep(0.5)
    (sent,) = loop.app.requests
    text = sent.json()["parts"][0]["text"]
    assert all(said in text for said in ("oi", "tudo bem?", "quero marcar uma limpeza"))
    assert len(loop.llm.requests) == 1


@pytest.mark.parametrize(
    "loop",
    [
        {
            "without_gateway": True,
            "profile": {"tools": ["knowledge.search"]},
            "conversations": {"defaults": {"double_text": "interrupt"}},
        }
    ],
    indirect=True,
)
async def test_interrupting_a_turn_mid_tool_call_answers_the_latest_state_with_a_valid_history(
    loop: Loop,
) -> None:
    loop.llm.script(
        ToolCalls(Call("knowledge__search", {"query": "preço"}, id="call-1")),
        lambda seen: Text("answer to: " + " | ".join(seen.contents("user"))),
    )
    await loop.publisher.publish(inbound(1, "quanto custa uma limpeza?"))

    async def asked_for_a_tool() -> bool:
        return len(loop.llm.requests) == 1

    await eventually(asked_for_a_tool, timeout_s=20, what="the first turn's tool call")
    await asyncio.sleep(0.3)  # the call is stored and published; its result never comes
    await loop.publisher.publish(inbound(2, "esquece, quero marcar uma consulta"))

    async def answered() -> bool:
        return len(loop.app.requests) == 1

    await eventually(answered, timeout_s=20, what="the new turn's answer")
    await asyncio.sleep(0.5)
    (sent,) = loop.app.requests
    assert "esquece, quero marcar uma consulta" in sent.json()["parts"][0]["text"]
    second = loop.llm.requests[1]
    tool_results = [m for m in second.messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_results] == ["call-1"], "a synthetic result"
    assert "superseded" in tool_results[0]["content"]
    statuses = [r["status"] for r in await loop.pool.fetch("SELECT status FROM turns")]
    assert sorted(statuses) == ["completed", "superseded"]


@pytest.mark.parametrize(
    "loop",
    [
        {
            "without_gateway": True,
            "profile": {"tools": ["knowledge.search"], "tool_step_timeout_s": 0.5},
        }
    ],
    indirect=True,
)
async def test_a_tool_that_never_answers_times_out_and_the_model_still_answers(
    loop: Loop,
) -> None:
    loop.llm.script(
        ToolCalls(Call("knowledge__search", {"query": "preço"}, id="call-1")),
        lambda seen: Text("Não consegui consultar agora: " + seen.contents("tool")[-1]),
    )
    await loop.publisher.publish(inbound(1, "quanto custa uma limpeza?"))

    async def answered() -> bool:
        status = await loop.pool.fetchval("SELECT status FROM turns LIMIT 1")
        return bool(status == "completed")

    await eventually(answered, timeout_s=20, what="the answer after the step timed out")
    (sent,) = loop.app.requests
    text = sent.json()["parts"][0]["text"]
    assert text.startswith("Não consegui consultar agora: ")
    assert '"error": "timeout"' in text, "the model read that the tool timed out"
    assert len(loop.llm.requests) == 2
