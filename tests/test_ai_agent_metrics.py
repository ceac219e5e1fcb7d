"""The AI metrics of a turn through the agent, by model and profile: chat calls, their tokens
and durations, and the transcription of a voice note."""

from __future__ import annotations

import uuid

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from libs.keys import KeySpace
from tests.ai_agent_support import (
    WA_TOKEN,
    add_inbound,
    handoff,
    media_channels,
    resources_for,
    running_consumers,
    settings_for,
    wait_for_replies,
)
from tests.llm_script import Text, Usage, server_error
from tests.llm_server import ScriptedOpenAIServer
from tests.media_servers import StoredFile, WhatsAppMediaServer
from tests.tool_support import seed_conversation


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_turn_counts_its_chat_call_tokens_and_transcription_by_model_and_profile(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    profile = f"metrics-{uuid.uuid4().hex[:8]}"  # the registry is the process's: a fresh label
    seeded = await seed_conversation(pg_pool)
    voice = {"kind": "media", "media_kind": "voice", "media_id": "m-1"}
    await add_inbound(pg_pool, seeded, 1, voice)
    agent = {
        "tenant": "acme",
        "profile": profile,
        "model": "gpt-metrics",
        "transcribe_audio": True,
    }
    async with ScriptedOpenAIServer() as llm, WhatsAppMediaServer(WA_TOKEN) as whatsapp:
        whatsapp.files["m-1"] = StoredFile(b"OggS" * 100, "audio/ogg")
        llm.transcribe("quero saber do meu pedido")
        llm.script(Text("Já vou ver.", usage=Usage(30, 4)))
        channels = media_channels(whatsapp.base_url, whatsapp.base_url)
        resources = resources_for(redis, keys, pg_pool, settings_for(llm), [agent], channels)
        async with running_consumers(resources):
            await resources.publisher.publish(handoff(seeded, 1, profile=profile))
            await wait_for_replies(redis, keys, 1)

    chat = {"model": "gpt-metrics", "profile": profile}
    assert sample("ai_requests_total", **chat, outcome="success") == 1
    assert sample("ai_tokens_used_total", **chat, kind="prompt") == 30
    assert sample("ai_tokens_used_total", **chat, kind="completion") == 4
    assert sample("ai_request_duration_seconds_count", **chat) == 1
    heard = {"model": "whisper-1", "profile": profile}
    assert sample("ai_requests_total", **heard, outcome="success") == 1
    assert sample("ai_request_duration_seconds_count", **heard) == 1


async def test_a_failed_chat_call_is_counted_by_its_outcome(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    profile = f"metrics-{uuid.uuid4().hex[:8]}"
    seeded = await seed_conversation(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "oi"})
    agent = {"tenant": "acme", "profile": profile, "model": "gpt-metrics"}
    async with ScriptedOpenAIServer() as llm:
        llm.script(server_error(), server_error())
        resources = resources_for(redis, keys, pg_pool, settings_for(llm), [agent])
        async with running_consumers(resources):
            await resources.publisher.publish(handoff(seeded, 1, profile=profile))
            await wait_for_replies(redis, keys, 1)

    chat = {"model": "gpt-metrics", "profile": profile}
    assert sample("ai_requests_total", **chat, outcome="unavailable") == 1
    assert sample("ai_requests_total", **chat, outcome="success") == 0
    assert sample("ai_tokens_used_total", **chat, kind="prompt") == 0
