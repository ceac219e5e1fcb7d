"""``atende conversations release``: a conversation a human held goes back to the AI.

The loop runs as workers run it (real Redis and Postgres, the scripted LLM through the real
SDK, a local app on the generic channel); the command runs in-process with typer's runner.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from dispatcher.mailbox import Mailbox, MergePolicy, WaitingMessage
from libs.keys import KeySpace
from tests.handoff_support import TENANT, World, running_world
from tests.llm_script import Text
from tests.provider_servers import GenericAppServer
from tests.streams_support import eventually

SECRET = "app-secret-for-tests"


@pytest.fixture
async def world(
    redis_url: str,
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    pg_dsn: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[World, GenericAppServer]]:
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
            env={"APP_SECRET": SECRET},
        ) as running:
            yield running, app


def sent_texts(app: GenericAppServer) -> list[str]:
    return [request.json()["parts"][0]["text"] for request in app.requests]


async def hand_off_and_write_during_it(world: World, app: GenericAppServer) -> None:
    await world.say(1, "quero falar com um atendente")
    await world.wait_for_status("human")
    await world.say(2, "alô? tem alguém aí?")
    await asyncio.sleep(0.3)  # room for a wrong answer to show up; none may
    assert len(app.requests) == 1, "only the handoff text: the AI is silent while a human holds it"


async def test_release_returns_the_conversation_to_the_ai_and_only_new_messages_are_answered(
    world: tuple[World, GenericAppServer],
) -> None:
    loop, app = world
    await hand_off_and_write_during_it(loop, app)

    result = await loop.cli("conversations", "release", loop.conversation_id, "--tenant", TENANT)

    assert result.exit_code == 0, result.output
    assert f"conversation {loop.conversation_id} of tenant {TENANT} returned to the AI" in (
        result.stdout
    )
    assert await loop.status() == "open"
    stretch = await loop.pool.fetchrow(
        "SELECT started_at, ended_at, released_by FROM handoffs WHERE conversation_id = $1",
        loop.conversation_id,
    )
    assert stretch is not None, "the human stretch is in the history"
    assert stretch["released_by"] == "operator"
    assert stretch["ended_at"] >= stretch["started_at"]

    loop.llm.script(Text("Olá de novo! Em que posso ajudar?"))
    await loop.say(3, "voltei, vocês abrem sábado?")

    async def answered() -> bool:
        return len(app.requests) == 2

    await eventually(answered, timeout_s=20, what="the AI to answer the new message")
    assert sent_texts(app)[1] == "Olá de novo! Em que posso ajudar?"
    (request,) = loop.llm.requests
    assert "voltei, vocês abrem sábado?" in request.contents("user")
    turns = await loop.turn_seqs()
    assert turns[-1][:2] == (3, 3), "the new turn answers only the new message"
    assert all(not (first <= 2 <= last) for first, last, _ in turns), "seq 2 was the human's"


async def test_release_without_tenant_finds_it_and_a_second_release_changes_nothing(
    world: tuple[World, GenericAppServer],
) -> None:
    loop, app = world
    await hand_off_and_write_during_it(loop, app)

    first = await loop.cli("conversations", "release", loop.conversation_id)
    again = await loop.cli("conversations", "release", loop.conversation_id)

    assert first.exit_code == 0, first.output
    assert again.exit_code == 2
    assert "is not held by a human; nothing changed" in again.stderr
    ended = await loop.pool.fetchval("SELECT count(*) FROM handoffs WHERE ended_at IS NOT NULL")
    assert ended == 1


async def test_releasing_an_unknown_conversation_is_refused_in_one_sentence(
    world: tuple[World, GenericAppServer],
) -> None:
    loop, _app = world
    unknown = await loop.cli("conversations", "release", "app:nobody")
    other_tenant = await loop.cli("conversations", "release", "app:nobody", "--tenant", "other")

    assert unknown.exit_code == 2
    assert "no tenant has a conversation 'app:nobody'" in unknown.stderr
    assert other_tenant.exit_code == 2
    assert "tenant 'other' has no conversation 'app:nobody'" in other_tenant.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


async def test_release_drops_what_a_gap_kept_back_and_opens_the_next_turn_at_once(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    mailbox = Mailbox(redis, keys, partitions=2, holder="test", gap_wait_ms=60_000)
    conversation = mailbox.conversation(TENANT, "app:contact-1")
    opened = await mailbox.admit(conversation, WaitingMessage(1, "e1", "m1"), "enqueue")
    assert opened.turn is not None
    # seq 2 is late; seq 3 waits behind the gap when the turn ends in a handoff.
    await mailbox.admit(conversation, WaitingMessage(3, "e3", "m3"), "enqueue")
    closed = await mailbox.close(conversation, opened.turn.token, "human", MergePolicy())
    assert closed.handed_over == ()
    await mailbox.admit(conversation, WaitingMessage(4, "e4", "m4"), "human")

    assert await mailbox.release(conversation) == 1, "seq 3 was the human's"

    reopened = await mailbox.admit(conversation, WaitingMessage(5, "e5", "m5"), "enqueue")
    assert reopened.outcome == "opened"
    assert reopened.turn is not None
    assert [m.seq for m in reopened.turn.messages] == [5]
    late = await mailbox.admit(conversation, WaitingMessage(2, "e2", "m2"), "enqueue")
    assert late.outcome == "duplicate", "a message of the human stretch never opens a turn"
