"""The whole product in one test process: the real ingress, the workers, and local peers.

A clinic tenant with three channels — ``app`` (generic, to a local app), ``wa`` (WhatsApp, to a
local Graph API) and ``cw`` (Chatwoot, to a local Chatwoot) — served by ``build_ingress_app``
and answered by the dispatcher, the AI agent, the tool gateway, the memory manager, delivery
and delivery statuses, as a worker runs them. Webhooks are signed as each provider signs them;
the LLM is the scripted OpenAI-compatible server, reached through the real SDK.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from channels.config import ChannelsConfig
from channels.directory import record_tenants_and_channels
from consumers.ai_agent import consumer as agent_consumer
from consumers.delivery import consumer as delivery_consumer
from consumers.delivery_status import consumer as delivery_status_consumer
from consumers.dispatcher import consumer as dispatcher_consumer
from consumers.memory_manager import consumer as memory_consumer
from consumers.tool_gateway import consumer as gateway_consumer
from dispatcher.config import ConversationsConfig
from events.catalog import CATALOG
from ingress.wiring import build_ingress_app
from libs.keys import KeySpace
from libs.resources import Resources
from libs.streams import Publisher
from libs.yaml_config import load_yaml_model
from tests.ai_agent_support import FAST_LLM, settings_for
from tests.consumer_support import consumers_running
from tests.llm_server import ScriptedOpenAIServer
from tests.provider_servers import ChatwootServer, GenericAppServer, WhatsAppGraphServer
from tool_gateway.config import AgentProfilesConfig

TENANT = "clinic"
PHONE_NUMBER_ID = "106540352242922"
CHATWOOT_ACCOUNT, CHATWOOT_INBOX = 1, 7
SECRETS = {
    "APP_SECRET": "app-secret-for-tests",
    "WA_SECRET": "wa-app-secret-for-tests",
    "WA_VERIFY": "wa-verify-for-tests",
    "WA_TOKEN": "wa-access-token-for-tests",
    "CW_SECRET": "cw-webhook-secret-for-tests",
    "CW_TOKEN": "cw-api-token-for-tests",
}
CONSUMERS = (
    dispatcher_consumer,
    agent_consumer,
    gateway_consumer,
    memory_consumer,
    delivery_consumer,
    delivery_status_consumer,
)


def _channels_yaml(app: GenericAppServer, graph: WhatsAppGraphServer, cw: ChatwootServer) -> str:
    return f"""
tenants:
  - id: {TENANT}
    channels:
      - id: app
        provider: generic
        callback_url: {app.callback_url}
        secrets: {{signing_secret: {{env: APP_SECRET}}}}
      - id: wa
        provider: whatsapp
        phone_number_id: "{PHONE_NUMBER_ID}"
        api_base_url: {graph.base_url}
        secrets:
          app_secret: {{env: WA_SECRET}}
          verify_token: {{env: WA_VERIFY}}
          access_token: {{env: WA_TOKEN}}
      - id: cw
        provider: chatwoot
        account_id: {CHATWOOT_ACCOUNT}
        inbox_id: {CHATWOOT_INBOX}
        api_base_url: {cw.base_url}
        secrets:
          webhook_secret: {{env: CW_SECRET}}
          api_access_token: {{env: CW_TOKEN}}
"""


@dataclass
class World:
    """The running product and its peers; ``post_*`` send signed webhooks to the ingress."""

    app: GenericAppServer
    graph: WhatsAppGraphServer
    chatwoot: ChatwootServer
    llm: ScriptedOpenAIServer
    publisher: Publisher
    pool: asyncpg.Pool
    ingress_url: str
    http: aiohttp.ClientSession
    _ids: dict[str, int] = field(default_factory=dict)

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """POST ``body`` to the ingress; the status and the decoded answer."""
        async with self.http.post(self.ingress_url + path, data=body, headers=headers) as answer:
            decoded = await answer.json(content_type=None)
            return answer.status, decoded if isinstance(decoded, dict) else {}

    async def post_generic(
        self,
        text: str,
        *,
        user: str = "u-7",
        message_id: str | None = None,
        traceparent: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """A text message from ``user`` on the ``app`` channel, signed by the app."""
        message_id = message_id or self._next("m")
        body = json.dumps(
            {
                "messages": [
                    {
                        "id": message_id,
                        "conversation_id": user,
                        "sender": {"id": user, "name": "Ana"},
                        "text": text,
                    }
                ]
            }
        ).encode()
        now = str(int(time.time()))
        digest = hmac.new(SECRETS["APP_SECRET"].encode(), f"{now}.".encode() + body, "sha256")
        headers = {
            "Content-Type": "application/json",
            "X-Atende-Timestamp": now,
            "X-Atende-Signature": f"sha256={digest.hexdigest()}",
        }
        if traceparent is not None:
            headers["traceparent"] = traceparent
        return await self.post("/webhooks/generic/app", body, headers)

    async def post_whatsapp(self, value: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A Cloud API webhook whose one change carries ``value``, signed by Meta."""
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            **value,
        }
        change = {"field": "messages", "value": value}
        document = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [change]}],
        }
        body = json.dumps(document).encode()
        digest = hmac.new(SECRETS["WA_SECRET"].encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
        return await self.post("/webhooks/whatsapp/wa", body, headers)

    async def post_whatsapp_text(self, text: str, *, wa_id: str) -> tuple[int, dict[str, Any]]:
        """A text message from ``wa_id``."""
        message = {
            "from": wa_id,
            "id": self._next("wamid.IN-"),
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": text},
        }
        contact = {"profile": {"name": "Ana"}, "wa_id": wa_id}
        return await self.post_whatsapp({"contacts": [contact], "messages": [message]})

    async def post_chatwoot(self, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A Chatwoot webhook, signed over timestamp and body."""
        body = json.dumps(document).encode()
        now = str(int(time.time()))
        digest = hmac.new(SECRETS["CW_SECRET"].encode(), f"{now}.".encode() + body, "sha256")
        headers = {
            "Content-Type": "application/json",
            "X-Chatwoot-Timestamp": now,
            "X-Chatwoot-Signature": f"sha256={digest.hexdigest()}",
        }
        return await self.post("/webhooks/chatwoot/cw", body, headers)

    async def turn_statuses(self) -> list[str]:
        """Every turn's status, oldest first."""
        rows = await self.pool.fetch("SELECT status FROM turns ORDER BY opened_at, turn_id")
        return [row["status"] for row in rows]

    def _next(self, prefix: str) -> str:
        self._ids[prefix] = self._ids.get(prefix, 0) + 1
        return f"{prefix}{self._ids[prefix]}"


@asynccontextmanager
async def world_running(
    redis: aioredis.Redis,
    keys: KeySpace,
    pool: asyncpg.Pool,
    tmp_path: Path,
    *,
    profile: Mapping[str, Any] | None = None,
    conversations: Mapping[str, Any] | None = None,
    llm_settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[World]:
    """Start the peers, the ingress and every conversation worker; stop them all after."""
    async with (
        GenericAppServer(SECRETS["APP_SECRET"]) as app,
        WhatsAppGraphServer(SECRETS["WA_TOKEN"], PHONE_NUMBER_ID) as graph,
        ChatwootServer(CHATWOOT_ACCOUNT, SECRETS["CW_TOKEN"]) as chatwoot,
        ScriptedOpenAIServer() as llm,
    ):
        path = tmp_path / "channels.yaml"
        path.write_text(_channels_yaml(app, graph, chatwoot))
        channels = load_yaml_model(path, ChannelsConfig, SECRETS)
        async with pool.acquire() as conn:
            await record_tenants_and_channels(conn, channels)
        agent = {"tenant": TENANT, "profile": "triage", "provider": "openai", "model": "gpt-test"}
        sections = {
            "tenants": channels,
            "agents": AgentProfilesConfig.model_validate([agent | dict(profile or {})]),
            "conversations": ConversationsConfig.model_validate(dict(conversations or {})),
            "llm": FAST_LLM.model_copy(update=dict(llm_settings or {})),
        }
        settings = settings_for(llm)
        publisher = Publisher(redis, keys, partitions=settings.stream_partitions)
        resources = Resources(settings, redis, keys, CATALOG, publisher, pool, sections)
        ingress = build_ingress_app(
            channels,
            redis=redis,
            keys=keys,
            partitions=settings.stream_partitions,
            capacity=settings.stream_capacity,
            backlog_full_retry_after_s=settings.backlog_full_retry_after_s,
            checks={},
        )
        server = TestServer(ingress)
        await server.start_server()
        try:
            async with (
                aiohttp.ClientSession() as http,
                consumers_running(CONSUMERS, resources),
            ):
                base_url = str(server.make_url("")).rstrip("/")
                yield World(app, graph, chatwoot, llm, publisher, pool, base_url, http)
        finally:
            await server.close()
