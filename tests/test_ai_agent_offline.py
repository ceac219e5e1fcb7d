"""Without an LLM provider: the offline model quotes the knowledge base or says it cannot,
and media without text is answered that the agent cannot listen or see yet."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from events.types.reply_parts import ReplyText
from libs.keys import KeySpace
from memory_manager import KnowledgeBase, MemoryConfig, build_embedder
from tests.ai_agent_support import (
    add_inbound,
    handoff,
    open_turn,
    replies,
    resources_for,
    running_consumers,
    settings_for,
    wait_for_replies,
)
from tests.tool_support import seed_conversation

RETURNS = "Posso devolver um produto? Sim: você pode devolver qualquer produto em até 30 dias."
HOURS = "Qual o horário de atendimento? A loja abre de segunda a sexta, das 9h às 18h."
SUPPORT = {"tenant": "acme", "profile": "support"}


async def _faq(pool: asyncpg.Pool) -> None:
    knowledge = KnowledgeBase(pool, build_embedder(MemoryConfig()))
    await knowledge.ingest("acme", "faq/returns", RETURNS)
    await knowledge.ingest("acme", "faq/hours", HOURS)


async def test_the_offline_model_quotes_the_passage_that_answers_the_question(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await _faq(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "posso devolver o produto?"})
    resources = resources_for(redis, keys, pg_pool, settings_for(None), [SUPPORT])
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    assert not reply.handoff
    assert reply.model == "offline"
    [part] = reply.parts
    assert isinstance(part, ReplyText)
    assert part.text == f"Encontrei isto nas nossas informações:\n\n{RETURNS}"


async def test_an_unrelated_question_is_asked_again_then_handed_to_a_human(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await _faq(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "vocês vendem bicicletas?"})
    local = SUPPORT | {"provider": "local"}
    resources = resources_for(redis, keys, pg_pool, settings_for(None), [local])
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)
        await add_inbound(pg_pool, seeded, 2, {"kind": "text", "text": "e patinetes elétricos?"})
        await open_turn(pg_pool, seeded, "acme-turn-2", 2, 2)
        await resources.publisher.publish(handoff(seeded, 2, turn_id="acme-turn-2", token=2))
        await wait_for_replies(redis, keys, 2)

    rephrase, gave_up = sorted(await replies(redis, keys), key=lambda r: r.fencing_token)
    assert not rephrase.handoff
    assert rephrase.parts == (
        ReplyText(text="Não encontrei uma resposta para isso. Pode reformular a pergunta?"),
    )
    assert gave_up.handoff
    assert "found nothing relevant" in (gave_up.handoff_reason or "")


async def test_a_voice_note_without_text_is_answered_that_it_cannot_be_heard(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    voice = {"kind": "media", "media_kind": "voice", "media_id": "m-1"}
    await add_inbound(pg_pool, seeded, 1, voice)
    english = SUPPORT | {"language": "en"}
    resources = resources_for(redis, keys, pg_pool, settings_for(None), [english])
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    assert not reply.handoff
    assert reply.parts == (
        ReplyText(
            text="I cannot listen to audio messages yet. Could you write your message, please?"
        ),
    )


async def test_an_image_without_caption_is_answered_that_it_cannot_be_seen(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "media", "media_kind": "image", "url": "x"})
    resources = resources_for(redis, keys, pg_pool, settings_for(None), [SUPPORT])
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    [part] = reply.parts
    assert isinstance(part, ReplyText)
    assert part.text.startswith("Ainda não consigo ver imagens")


async def test_a_shared_location_reaches_the_model_described_not_as_media(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await _faq(pg_pool)
    location = {"kind": "location", "latitude": -23.5, "longitude": -46.6}
    await add_inbound(pg_pool, seeded, 1, location)
    resources = resources_for(redis, keys, pg_pool, settings_for(None), [SUPPORT])
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    [reply] = await replies(redis, keys)
    [part] = reply.parts
    assert isinstance(part, ReplyText)
    assert "Ainda não consigo" not in part.text
