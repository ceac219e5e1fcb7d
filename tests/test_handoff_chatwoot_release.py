"""A Chatwoot agent resolving a conversation hands it back to the AI, through the real ingress.

Every webhook is signed as Chatwoot signs it and goes through the webhook endpoint; the
workers (dispatcher, agent, delivery, handoff) run as a worker runs them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from consumers.handoff import consumer as handoff_consumer
from ingress.wiring import build_ingress_app
from libs.keys import KeySpace
from tests.handoff_support import World, running_world
from tests.llm_script import Text
from tests.provider_servers import ChatwootServer
from tests.streams_support import eventually
from tests.test_handoff_chatwoot import (
    ACCOUNT,
    CHATWOOT_ENV,
    CONVERSATION,
    HANDOFF_TEXT,
    TOKEN,
    WEBHOOK_SECRET,
    chatwoot_channel,
)

FIXTURES = Path(__file__).parent / "fixtures" / "chatwoot"


class Chatwoot:
    """Chatwoot as the test plays it: its API (a local server) and its signed webhooks."""

    def __init__(self, api: ChatwootServer, webhook_url: str) -> None:
        self.api = api
        self.webhook_url = webhook_url
        self._message_ids = iter(range(9000, 10_000))

    async def post(self, document: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(document).encode()
        timestamp = str(int(time.time()))
        digest = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        headers = {
            "Content-Type": "application/json",
            "X-Chatwoot-Signature": f"sha256={digest.hexdigest()}",
            "X-Chatwoot-Timestamp": timestamp,
        }
        async with (
            ClientSession() as http,
            http.post(self.webhook_url, data=body, headers=headers) as response,
        ):
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

    async def contact_writes(self, text: str) -> None:
        document = json.loads((FIXTURES / "message_created_text.json").read_text())
        document["id"] = next(self._message_ids)
        document["content"] = text
        document["conversation"]["id"] = CONVERSATION
        await self.post(document)

    async def agent_resolves(self, updated_at: float) -> dict[str, Any]:
        document = json.loads((FIXTURES / "conversation_status_changed.json").read_text())
        document["id"] = CONVERSATION
        document["updated_at"] = updated_at
        return await self.post(document)


@pytest.fixture
async def world(
    redis_url: str,
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    pg_dsn: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[World, Chatwoot]]:
    async with (
        ChatwootServer(ACCOUNT, TOKEN) as api,
        running_world(
            redis_url=redis_url,
            redis=redis,
            keys=keys,
            pool=pg_pool,
            dsn=pg_dsn,
            tmp_path=tmp_path,
            channel_yaml=chatwoot_channel(api.base_url),
            channel_id="cw",
            provider="chatwoot",
            contact=str(CONVERSATION),
            extra_consumers=[handoff_consumer],
            env=CHATWOOT_ENV,
        ) as loop,
    ):
        app = build_ingress_app(
            loop.channels,
            redis=redis,
            keys=keys,
            partitions=loop.settings.stream_partitions,
            capacity=10_000,
            backlog_full_retry_after_s=30,
            checks={},
        )
        server = TestServer(app)
        await server.start_server()
        try:
            yield loop, Chatwoot(api, str(server.make_url("/webhooks/chatwoot/cw")))
        finally:
            await server.close()


async def test_an_agent_resolving_the_conversation_returns_it_to_the_ai(
    world: tuple[World, Chatwoot],
) -> None:
    loop, chatwoot = world
    await chatwoot.contact_writes("quero falar com um atendente")
    await loop.wait_for_status("human")
    await eventually(
        lambda: _has(chatwoot.api.messages(CONVERSATION, private=True), 1),
        timeout_s=20,
        what="the note for the agents",
    )
    await chatwoot.contact_writes("alô? ainda estou esperando")
    await eventually(lambda: _stored(loop, 2), what="the message during the human stretch")

    answer = await chatwoot.agent_resolves(updated_at=time.time())
    assert answer == {"status": "accepted", "events": 1, "duplicates": 0}
    await loop.wait_for_status("open")

    stretch = await loop.pool.fetchrow("SELECT ended_at, released_by FROM handoffs")
    assert stretch is not None
    assert stretch["released_by"] == "channel"
    assert stretch["ended_at"] is not None
    loop.llm.script(Text("Oi! Voltei a te atender. Como posso ajudar?"))
    await chatwoot.contact_writes("voltei, vocês abrem sábado?")

    await eventually(
        lambda: _has(chatwoot.api.messages(CONVERSATION, private=False), 2),
        timeout_s=20,
        what="the AI to answer the new message",
    )
    assert chatwoot.api.messages(CONVERSATION, private=False) == [
        HANDOFF_TEXT,
        "Oi! Voltei a te atender. Como posso ajudar?",
    ], "the message of the human stretch got no answer; the new one got one"
    (request,) = loop.llm.requests
    assert "voltei, vocês abrem sábado?" in request.contents("user")
    turns = await loop.turn_seqs()
    assert turns[-1][:2] == (3, 3)


async def test_the_same_resolve_sent_again_is_a_duplicate(world: tuple[World, Chatwoot]) -> None:
    loop, chatwoot = world
    await chatwoot.contact_writes("falar com um humano")
    await loop.wait_for_status("human")
    changed_at = time.time()

    first = await chatwoot.agent_resolves(updated_at=changed_at)
    again = await chatwoot.agent_resolves(updated_at=changed_at)

    assert first["events"] == 1
    assert again == {"status": "duplicate", "duplicates": 1}
    await loop.wait_for_status("open")


async def _has(items: list[str], count: int) -> bool:
    return len(items) == count


async def _stored(loop: World, seq: int) -> bool:
    await asyncio.sleep(0)
    return bool(await loop.pool.fetchval("SELECT count(*) FROM messages WHERE seq = $1", seq))
