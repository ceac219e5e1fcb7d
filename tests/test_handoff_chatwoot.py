"""A handoff on a Chatwoot channel opens the conversation for agents with one private note.

The loop runs as workers run it, the handoff consumer with it; the channel is a local server
speaking Chatwoot's application API, which records every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from consumers.handoff import consumer as handoff_consumer
from dispatcher.assignment import HumanStretches
from dispatcher.store import DispatcherStore
from events.catalog import CATALOG
from events.partitions import partition_for
from events.streams import CONVERSATION_HANDOFF_HUMAN
from libs.keys import KeySpace
from libs.streams.codec import decode_entry
from tests.handoff_support import TENANT, World, running_world
from tests.llm_script import Text
from tests.provider_servers import ChatwootServer
from tests.streams_support import entries, eventually

ACCOUNT, TOKEN, WEBHOOK_SECRET = 1, "cw-bot-token", "cw-webhook-secret"
CONVERSATION = 58
HANDOFF_TEXT = "Vou chamar uma pessoa da equipe para continuar o atendimento."


def chatwoot_channel(base_url: str) -> str:
    """The YAML of channel ``cw``: a Chatwoot inbox whose API is ``base_url``."""
    return (
        "      - id: cw\n        provider: chatwoot\n        inbox_id: 7\n"
        f"        account_id: {ACCOUNT}\n        api_base_url: {base_url}\n"
        "        secrets:\n          webhook_secret: {env: CW_SECRET}\n"
        "          api_access_token: {env: CW_TOKEN}\n"
    )


CHATWOOT_ENV = {"CW_SECRET": WEBHOOK_SECRET, "CW_TOKEN": TOKEN}


@pytest.fixture
async def world(
    redis_url: str,
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    pg_dsn: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[World, ChatwootServer]]:
    async with (
        ChatwootServer(ACCOUNT, TOKEN) as chatwoot,
        running_world(
            redis_url=redis_url,
            redis=redis,
            keys=keys,
            pool=pg_pool,
            dsn=pg_dsn,
            tmp_path=tmp_path,
            channel_yaml=chatwoot_channel(chatwoot.base_url),
            channel_id="cw",
            provider="chatwoot",
            contact=str(CONVERSATION),
            extra_consumers=[handoff_consumer],
            env=CHATWOOT_ENV,
        ) as running,
    ):
        yield running, chatwoot


async def remember(loop: World, key: str, value: str) -> None:
    await loop.pool.execute(
        "INSERT INTO facts (tenant_id, contact_id, key, value, source) "
        "SELECT tenant_id, contact_id, $2, to_jsonb($3::text), 'conversation' "
        "FROM conversations WHERE conversation_id = $1",
        loop.conversation_id,
        key,
        value,
    )


async def test_a_handoff_opens_the_conversation_for_agents_with_one_private_note(
    world: tuple[World, ChatwootServer],
) -> None:
    loop, chatwoot = world
    loop.llm.script(Text("Olá Ana! Como posso ajudar?"))
    await loop.say(1, "oi, boa tarde")
    await eventually(
        lambda: _count(chatwoot.messages(CONVERSATION, private=False), 1), what="the AI answer"
    )
    await remember(loop, "nome", "Ana Souza")

    await loop.say(2, "quero falar com um atendente")

    await eventually(
        lambda: _count(chatwoot.messages(CONVERSATION, private=True), 1),
        timeout_s=20,
        what="the private note",
    )
    assert chatwoot.statuses(CONVERSATION) == ["open"], "opened for agents, once"
    assert chatwoot.messages(CONVERSATION, private=False) == [
        "Olá Ana! Como posso ajudar?",
        HANDOFF_TEXT,
    ], "the contact read the handoff text once; no second notice"
    (note,) = chatwoot.messages(CONVERSATION, private=True)
    assert note.startswith("Handed over by dispatcher: asked_for_human")
    assert "Contact: oi, boa tarde" in note
    assert "Assistant: Olá Ana! Como posso ajudar?" in note
    assert "Contact: quero falar com um atendente" in note
    assert "- nome: Ana Souza" in note
    toggle = next(r for r in chatwoot.requests if r.path.endswith("/toggle_status"))
    note_request = next(r for r in chatwoot.requests if r.json().get("private"))
    assert chatwoot.requests.index(toggle) < chatwoot.requests.index(note_request)
    assert note_request.json()["message_type"] == "outgoing"


async def test_a_redelivered_handoff_event_posts_no_second_note(
    world: tuple[World, ChatwootServer],
) -> None:
    loop, chatwoot = world
    await loop.say(1, "quero falar com um humano")
    await eventually(
        lambda: _count(chatwoot.messages(CONVERSATION, private=True), 1),
        timeout_s=20,
        what="the private note",
    )
    partition = partition_for(TENANT, loop.conversation_id, loop.settings.stream_partitions)
    stream = loop.keys.stream(CONVERSATION_HANDOFF_HUMAN, partition)
    ((_id, fields),) = await entries(loop.redis, stream)
    handoff = decode_entry(CATALOG, fields)

    await loop.publisher.publish(handoff)  # the same event, as a redelivery brings it

    async def handled_twice() -> bool:
        group = await loop.redis.xinfo_groups(stream)
        return any(g["name"] == b"handoff" and g["entries-read"] == 2 for g in group)

    await eventually(handled_twice, what="the repeat to be read")
    await asyncio.sleep(0.2)
    assert len(chatwoot.messages(CONVERSATION, private=True)) == 1
    assert chatwoot.statuses(CONVERSATION) == ["open"]
    row = await loop.pool.fetchrow("SELECT event_id, reason, agents_notified_at FROM handoffs")
    assert row is not None
    assert row["event_id"] == handoff.id
    assert row["reason"] == "asked_for_human"
    assert row["agents_notified_at"] is not None


async def _count(items: list[str], expected: int) -> bool:
    return len(items) == expected


async def test_each_human_stretch_gets_its_note_and_an_old_event_redelivered_gets_none(
    world: tuple[World, ChatwootServer],
) -> None:
    loop, chatwoot = world
    await loop.say(1, "quero falar com um atendente")
    await eventually(
        lambda: _count(chatwoot.messages(CONVERSATION, private=True), 1),
        timeout_s=20,
        what="the first note",
    )
    partition = partition_for(TENANT, loop.conversation_id, loop.settings.stream_partitions)
    stream = loop.keys.stream(CONVERSATION_HANDOFF_HUMAN, partition)
    ((_id, fields),) = await entries(loop.redis, stream)
    first_handoff = decode_entry(CATALOG, fields)
    released = await loop.cli("conversations", "release", loop.conversation_id)
    assert released.exit_code == 0, released.output

    await loop.say(2, "preciso de um humano de novo")
    await eventually(
        lambda: _count(chatwoot.messages(CONVERSATION, private=True), 2),
        timeout_s=20,
        what="the second stretch's note",
    )
    await loop.publisher.publish(first_handoff)  # a late redelivery of the first stretch's

    async def read_three() -> bool:
        groups = await loop.redis.xinfo_groups(stream)
        return any(g["name"] == b"handoff" and g["entries-read"] == 3 for g in groups)

    await eventually(read_three, what="the old event to be read again")
    await asyncio.sleep(0.2)
    assert len(chatwoot.messages(CONVERSATION, private=True)) == 2
    stretches = await loop.pool.fetch(
        "SELECT event_id, released_by FROM handoffs ORDER BY started_at"
    )
    assert [row["released_by"] for row in stretches] == ["operator", None]
    assert stretches[0]["event_id"] == first_handoff.id
    assert stretches[1]["event_id"] != first_handoff.id


async def test_a_stretch_that_began_after_an_event_is_not_that_events(
    world: tuple[World, ChatwootServer],
) -> None:
    loop, _chatwoot = world
    loop.llm.script(Text("Olá!"))
    await loop.say(1, "oi")
    stretches = HumanStretches(loop.pool)
    await DispatcherStore(loop.pool).assign_to_human(TENANT, loop.conversation_id)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)

    old = await stretches.claim(
        TENANT,
        loop.conversation_id,
        event_id="0190-old-event",
        occurred_at=long_ago,
        reason="asked_for_human",
        requested_by="agent",
    )
    own = await stretches.claim(
        TENANT,
        loop.conversation_id,
        event_id="0190-new-event",
        occurred_at=datetime.now(UTC),
        reason="asked_for_human",
        requested_by="agent",
    )

    assert old is None
    assert own is not None
    assert not own.agents_notified
