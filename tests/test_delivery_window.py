"""WhatsApp's 24-hour customer-service window, end to end against the local Graph API server:
inside it the reply goes out as written; outside it the channel's template goes instead, or,
without one, nothing is sent and the conversation is handed to a human."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
import redis.asyncio as aioredis

from channels.base_config import WindowTemplate
from events.types.reply_parts import ReplyTemplate, ReplyText
from libs.keys import KeySpace
from tests.delivery_support import (
    CONVERSATION,
    add_inbound,
    channels_config,
    handoffs,
    open_turn,
    reply,
    turn_status,
    whatsapp_world,
)
from tests.provider_servers import graph_error
from tests.streams_support import eventually

TEMPLATE = {"name": "retomar_conversa", "language": "pt_BR", "parameters": ["Ana"]}
LATE = timedelta(hours=25)


async def test_inside_the_window_the_reply_goes_out_as_text(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    recent = timedelta(hours=23)
    channel = {"window_template": TEMPLATE}
    async with whatsapp_world(
        redis, keys, pg_pool, last_inbound_age=recent, channel=channel
    ) as world:
        turn = await open_turn(world)
        await world.publisher.publish(reply(turn, ReplyText(text="Temos horário na sexta.")))

        async def completed() -> bool:
            return await turn_status(world, turn) == "completed"

        await eventually(completed, what="the turn to complete")
        bodies = [r.json() for r in world.graph.requests]
        assert [(b["type"], b["text"]["body"]) for b in bodies] == [
            ("text", "Temos horário na sexta.")
        ]


async def test_outside_the_window_the_configured_template_is_sent_instead(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    async with whatsapp_world(
        redis, keys, pg_pool, last_inbound_age=LATE, channel={"window_template": TEMPLATE}
    ) as world:
        turn = await open_turn(world)
        await world.publisher.publish(reply(turn, ReplyText(text="Temos horário na sexta.")))

        async def completed() -> bool:
            return await turn_status(world, turn) == "completed"

        await eventually(completed, what="the turn to complete")
        assert [r.json()["type"] for r in world.graph.requests] == ["template"]
        assert world.graph.requests[0].json()["template"] == {
            "name": "retomar_conversa",
            "language": {"code": "pt_BR"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
        }
        row = await world.pool.fetchrow(
            "SELECT kind, delivery_status FROM messages WHERE direction = 'out'"
        )
        assert row is not None
        assert (row["kind"], row["delivery_status"]) == ("template", "sent")
        status = await world.pool.fetchval(
            "SELECT status FROM conversations WHERE conversation_id = $1", CONVERSATION
        )
        assert status == "open", "the AI keeps the conversation: the contact may answer"


async def test_outside_the_window_without_a_template_a_human_takes_over_and_nothing_is_sent(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    async with whatsapp_world(redis, keys, pg_pool, last_inbound_age=LATE) as world:
        turn = await open_turn(world)
        await world.publisher.publish(reply(turn, ReplyText(text="Temos horário na sexta.")))

        async def handed_off() -> bool:
            return await turn_status(world, turn) == "handed_off"

        await eventually(handed_off, what="the turn handed to a human")
        assert world.graph.requests == [], "no free-form message outside the window"
        status = await world.pool.fetchval(
            "SELECT status FROM conversations WHERE conversation_id = $1", CONVERSATION
        )
        assert status == "human"
        outbound = "SELECT count(*) FROM messages WHERE direction = 'out'"
        assert await world.pool.fetchval(outbound) == 0

        async def published() -> bool:
            return len(await handoffs(world)) == 1

        await eventually(published, what="conversation.handoff.human")
        (event,) = await handoffs(world)
        assert (event.reason, event.requested_by, event.turn_id) == (
            "outside_24h_window",
            "dispatcher",
            turn.turn_id,
        )


async def test_a_newer_inbound_message_reopens_the_window(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    async with whatsapp_world(redis, keys, pg_pool, last_inbound_age=LATE) as world:
        await add_inbound(world.pool, 2, age=timedelta(minutes=2))
        turn = await open_turn(world, seq=1)
        await world.publisher.publish(reply(turn, ReplyText(text="Oi de novo!")))

        async def completed() -> bool:
            return await turn_status(world, turn) == "completed"

        await eventually(completed, what="the turn to complete")
        assert [r.json()["type"] for r in world.graph.requests] == ["text"]


async def test_a_reply_that_is_a_template_already_is_sent_as_it_is(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    async with whatsapp_world(redis, keys, pg_pool, last_inbound_age=LATE) as world:
        turn = await open_turn(world)
        own = ReplyTemplate(name="lembrete_consulta", language="pt_BR")
        await world.publisher.publish(reply(turn, own))

        async def completed() -> bool:
            return await turn_status(world, turn) == "completed"

        await eventually(completed, what="the turn to complete")
        assert [r.json()["template"]["name"] for r in world.graph.requests] == ["lembrete_consulta"]


def test_a_template_is_checked_when_the_config_is_loaded() -> None:
    with pytest.raises(ValueError, match="language"):
        channels_config("http://127.0.0.1:1", window_template={"name": "x", "language": "pt-br"})
    channel = channels_config("http://127.0.0.1:1", window_template=TEMPLATE).tenants[0].channels[0]
    window = channel.service_window()
    assert window is not None
    assert (window.hours, window.template) == (24, WindowTemplate.model_validate(TEMPLATE))


async def test_when_whatsapp_says_the_window_is_closed_a_human_takes_over_at_once(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    # The stored messages say the window is open, but WhatsApp knows better (error 131047).
    async with whatsapp_world(redis, keys, pg_pool) as world:
        world.graph.script(graph_error(131047, "Re-engagement message"))
        turn = await open_turn(world)
        await world.publisher.publish(reply(turn, ReplyText(text="Temos horário na sexta.")))

        async def handed_off() -> bool:
            return await turn_status(world, turn) == "handed_off"

        await eventually(handed_off, what="the turn handed to a human")
        assert len(world.graph.requests) == 1, "refused once, not retried"
        status = await world.pool.fetchval(
            "SELECT delivery_status FROM messages WHERE direction = 'out'"
        )
        assert status == "failed"

        async def published() -> bool:
            return [h.reason for h in await handoffs(world)] == ["outside_24h_window"]

        await eventually(published, what="conversation.handoff.human")
