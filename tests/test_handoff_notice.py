"""A handoff on a channel without an agent inbox: recorded, and the contact told only once.

The handoff text (or the agent's fallback) usually tells the contact a person will answer;
only a silent handoff (a reply with no parts) gets the notice, and a redelivery sends nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from consumers.delivery import consumer as delivery_consumer
from consumers.dispatcher import consumer as dispatcher_consumer
from consumers.handoff import consumer as handoff_consumer
from dispatcher.mailbox import Mailbox
from events.envelope import Envelope
from events.types.agent import AgentResponseGenerated
from libs.keys import KeySpace
from tests.handoff_support import TENANT, World, running_world
from tests.provider_servers import GenericAppServer
from tests.streams_support import eventually

SECRET = "app-secret-for-tests"
NOTICE = "Uma pessoa da equipe vai continuar por aqui."


@pytest.fixture
async def world(
    redis_url: str,
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    pg_dsn: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[World, GenericAppServer]]:
    notice = getattr(request, "param", True)
    async with GenericAppServer(SECRET) as app:
        channel = (
            "      - id: app\n        provider: generic\n"
            f"        callback_url: {app.callback_url}\n"
            "        secrets:\n          signing_secret: {env: APP_SECRET}\n"
        )
        async with running_world(
            redis_url=redis_url,
            redis=redis,
            keys=keys,
            pool=pg_pool,
            dsn=pg_dsn,
            tmp_path=tmp_path,
            channel_yaml=channel,
            channel_id="app",
            provider="generic",
            contact="contact-9",
            loop_consumers=[dispatcher_consumer, delivery_consumer],
            extra_consumers=[handoff_consumer],
            conversations={"defaults": {"handoff_text": NOTICE, "handoff_notice": notice}},
            env={"APP_SECRET": SECRET},
        ) as running:
            yield running, app


async def hand_off_silently(loop: World) -> Envelope[AgentResponseGenerated]:
    """The agent's turn over message 1 ends in a handoff that says nothing to the contact."""
    await loop.say(1, "meu pedido veio errado")
    mailbox = Mailbox(loop.redis, loop.keys, partitions=loop.settings.stream_partitions, holder="t")
    conversation = mailbox.conversation(TENANT, loop.conversation_id)

    async def opened() -> bool:
        return await mailbox.current(conversation) is not None

    await eventually(opened, what="the turn to open")
    turn = await mailbox.current(conversation)
    assert turn is not None
    reply = AgentResponseGenerated(
        turn_id=turn.turn_id,
        fencing_token=turn.token,
        reply_id=f"{turn.turn_id}:{turn.token}:reply",
        channel_id=loop.channel_id,
        parts=(),
        handoff=True,
        handoff_reason="agent_unsure: the order needs a person",
        agent_profile="triage",
    )
    envelope = Envelope.new(reply, tenant_id=TENANT, conversation_id=loop.conversation_id)
    await loop.publisher.publish(envelope)
    await loop.wait_for_status("human")
    return envelope


async def test_a_silent_handoff_tells_the_contact_once(
    world: tuple[World, GenericAppServer],
) -> None:
    loop, app = world
    await hand_off_silently(loop)

    async def notified() -> bool:
        return bool(await loop.pool.fetchval("SELECT agents_notified_at FROM handoffs"))

    await eventually(notified, timeout_s=20, what="the handoff to be handled")
    assert [r.json()["parts"][0]["text"] for r in app.requests] == [NOTICE]
    stored = await loop.pool.fetchrow(
        "SELECT reply_id, delivery_status FROM messages WHERE direction = 'out'"
    )
    assert stored is not None
    assert stored["delivery_status"] == "sent"
    row = await loop.pool.fetchrow("SELECT reason, requested_by, ended_at FROM handoffs")
    assert row is not None
    assert (row["reason"], row["requested_by"], row["ended_at"]) == ("agent_unsure", "agent", None)


async def test_a_handoff_that_already_told_the_contact_sends_no_notice(
    world: tuple[World, GenericAppServer],
) -> None:
    loop, app = world
    await loop.say(1, "quero falar com um atendente")

    async def notified() -> bool:
        return bool(await loop.pool.fetchval("SELECT agents_notified_at FROM handoffs"))

    await eventually(notified, timeout_s=20, what="the handoff to be handled")
    await asyncio.sleep(0.2)
    assert [r.json()["parts"][0]["text"] for r in app.requests] == [NOTICE], "the handoff text"


@pytest.mark.parametrize("world", [False], indirect=True)
async def test_with_the_notice_off_a_silent_handoff_is_only_recorded(
    world: tuple[World, GenericAppServer],
) -> None:
    loop, app = world
    await hand_off_silently(loop)

    async def notified() -> bool:
        return bool(await loop.pool.fetchval("SELECT agents_notified_at FROM handoffs"))

    await eventually(notified, timeout_s=20, what="the handoff to be handled")
    assert app.requests == []
    assert await loop.status() == "human"
