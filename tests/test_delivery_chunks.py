"""A part split into several WhatsApp messages keeps every provider id, and a status webhook
of any chunk moves the stored message (by its least advanced chunk; failed when one fails)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from delivery.statuses import OutboundStatuses
from events.types.delivery import DeliveryStatusUpdated
from events.types.reply_parts import ReplyText
from libs.keys import KeySpace
from tests.delivery_support import (
    CHANNEL,
    TENANT,
    WhatsAppWorld,
    open_turn,
    reply,
    status_webhook,
    turn_status,
    whatsapp_world,
)
from tests.streams_support import eventually
from tests.webhook_support import post, signed

# Three paragraphs of 3,000 characters: WhatsApp takes 4,096 per message, so three messages.
LONG = "\n\n".join(c * 2_999 + "." for c in "abc")


@pytest.fixture
async def world(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> AsyncIterator[WhatsAppWorld]:
    async with whatsapp_world(redis, keys, pg_pool) as world:
        yield world


async def send_long_reply(world: WhatsAppWorld) -> list[str]:
    """Deliver the 9,000-character reply; the wamids the Graph API server gave, in order."""
    turn = await open_turn(world)
    await world.publisher.publish(reply(turn, ReplyText(text=LONG)))

    async def completed() -> bool:
        return await turn_status(world, turn) == "completed"

    await eventually(completed, what="the long reply's turn to complete")
    assert [r.json()["text"]["body"][0] for r in world.graph.requests] == ["a", "b", "c"]
    return [f"wamid.HBgM{n:06d}" for n in range(1, 4)]


async def message_status(world: WhatsAppWorld) -> tuple[str, str]:
    row = await world.pool.fetchrow(
        "SELECT delivery_status, provider_message_id FROM messages WHERE direction = 'out'"
    )
    assert row is not None
    return row["delivery_status"], row["provider_message_id"]


async def status_of_chunks(world: WhatsAppWorld) -> list[tuple[int, str, str]]:
    rows = await world.pool.fetch(
        "SELECT chunk, provider_message_id, delivery_status FROM message_provider_ids "
        "ORDER BY chunk"
    )
    return [(r["chunk"], r["provider_message_id"], r["delivery_status"]) for r in rows]


async def post_status(world: WhatsAppWorld, wamid: str, status: str) -> None:
    body = status_webhook(wamid, status)
    code, _answer = await post(world.webhook_url, body, signed(body))
    assert code == 200


async def test_every_chunk_of_a_split_part_is_recorded(world: WhatsAppWorld) -> None:
    wamids = await send_long_reply(world)
    assert await message_status(world) == ("sent", wamids[0])
    assert await status_of_chunks(world) == [(i, w, "sent") for i, w in enumerate(wamids)]


async def test_a_status_webhook_of_the_second_chunk_is_applied_not_unknown(
    world: WhatsAppWorld,
) -> None:
    wamids = await send_long_reply(world)
    await post_status(world, wamids[1], "delivered")

    async def chunk_delivered() -> bool:
        return (await status_of_chunks(world))[1][2] == "delivered"

    await eventually(chunk_delivered, what="the second chunk's status recorded")
    # Two chunks are only sent yet: the message is not delivered until all of it is.
    assert (await message_status(world))[0] == "sent"
    for wamid in (wamids[0], wamids[2]):
        await post_status(world, wamid, "delivered")

    async def delivered() -> bool:
        return (await message_status(world))[0] == "delivered"

    await eventually(delivered, what="the message delivered once every chunk is")
    for wamid in wamids:
        await post_status(world, wamid, "read")

    async def read() -> bool:
        return (await message_status(world))[0] == "read"

    await eventually(read, what="the message read once every chunk is")


async def test_a_failed_chunk_fails_the_message_and_later_statuses_do_not_revive_it(
    world: WhatsAppWorld,
) -> None:
    wamids = await send_long_reply(world)
    await post_status(world, wamids[1], "failed")

    async def failed() -> bool:
        return (await message_status(world))[0] == "failed"

    await eventually(failed, what="the message failed with its second chunk")
    statuses = OutboundStatuses(world.pool)
    for wamid in wamids:
        update = DeliveryStatusUpdated(channel_id=CHANNEL, provider_message_id=wamid, status="read")
        await statuses.record(TENANT, update)
    assert (await message_status(world))[0] == "failed"
    assert [s for _c, _w, s in await status_of_chunks(world)] == ["read", "failed", "read"]


async def test_racing_statuses_of_different_chunks_lose_no_update(world: WhatsAppWorld) -> None:
    wamids = await send_long_reply(world)
    statuses = OutboundStatuses(world.pool)
    updates = [
        DeliveryStatusUpdated(channel_id=CHANNEL, provider_message_id=wamid, status=status)
        for status in ("delivered", "read")
        for wamid in wamids
    ] * 3
    outcomes = await asyncio.gather(*(statuses.record(TENANT, u) for u in updates))
    assert (await message_status(world))[0] == "read"
    assert outcomes.count("applied") <= 6, "each chunk moves to delivered and read at most once"
    assert "unknown" not in outcomes
