"""A conversation loop with handoff and release: the workers as a worker process runs them,
a channel's local provider server, the scripted LLM, and the operator's command line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from typer.testing import CliRunner, Result

from atende.cli import app as cli_app
from channels.config import ChannelsConfig
from channels.directory import record_tenants_and_channels
from consumers.ai_agent import consumer as agent_consumer
from consumers.delivery import consumer as delivery_consumer
from consumers.dispatcher import consumer as dispatcher_consumer
from dispatcher.config import ConversationsConfig
from events.catalog import CATALOG
from events.envelope import Envelope
from events.types.common import Provider
from events.types.inbound_content import InboundText
from events.types.inbox import ContactIdentity, InboxMessageReceived
from libs.keys import KeySpace
from libs.resources import Resources
from libs.settings import Settings
from libs.streams import Consumer, Publisher
from libs.yaml_config import load_yaml_model
from tests.ai_agent_support import FAST_LLM, settings_for
from tests.consumer_support import consumers_running
from tests.llm_server import ScriptedOpenAIServer
from tests.streams_support import eventually
from tool_gateway.config import AgentProfilesConfig

TENANT = "clinic"
LOOP_CONSUMERS: tuple[Consumer, ...] = (dispatcher_consumer, agent_consumer, delivery_consumer)


@dataclass
class World:
    """The running loop of one channel."""

    channel_id: str
    provider: Provider
    contact: str
    llm: ScriptedOpenAIServer
    publisher: Publisher
    pool: asyncpg.Pool
    redis: aioredis.Redis
    keys: KeySpace
    settings: Settings
    redis_url: str
    dsn: str
    channels: ChannelsConfig

    @property
    def conversation_id(self) -> str:
        """The conversation of the test's contact."""
        return f"{self.channel_id}:{self.contact}"

    def inbound(self, seq: int, text: str) -> Envelope[InboxMessageReceived]:
        """The contact's message ``seq``, as the ingress appends it."""
        return Envelope.new(
            InboxMessageReceived(
                channel_id=self.channel_id,
                provider=self.provider,
                provider_message_id=f"msg-{seq}",
                seq=seq,
                contact=ContactIdentity(provider_user_id=self.contact, display_name="Ana"),
                message=InboundText(text=text),
                received_at=datetime.now(UTC),
            ),
            tenant_id=TENANT,
            conversation_id=self.conversation_id,
        )

    async def say(self, seq: int, text: str) -> None:
        """Publish the contact's message ``seq`` and wait until it is stored."""
        await self.publisher.publish(self.inbound(seq, text))

        async def stored() -> bool:
            return bool(
                await self.pool.fetchval("SELECT count(*) FROM messages WHERE seq = $1", seq)
            )

        await eventually(stored, timeout_s=20, what=f"message {seq} to be stored")

    async def status(self) -> str:
        """The conversation's status in Postgres."""
        return str(
            await self.pool.fetchval(
                "SELECT status FROM conversations WHERE conversation_id = $1",
                self.conversation_id,
            )
        )

    async def wait_for_status(self, status: str) -> None:
        """Wait until the conversation's status is ``status``."""

        async def reached() -> bool:
            return await self.status() == status

        await eventually(reached, timeout_s=20, what=f"the conversation to be {status}")

    async def turn_seqs(self) -> list[tuple[int, int, str]]:
        """Every turn's first and last seq and status, in the order they opened."""
        rows = await self.pool.fetch(
            "SELECT first_seq, last_seq, status FROM turns ORDER BY opened_at, fencing_token"
        )
        return [(row["first_seq"], row["last_seq"], row["status"]) for row in rows]

    async def cli(self, *args: str) -> Result:
        """Run ``atende ARGS`` in-process against this world's Redis and Postgres."""
        env = {
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": self.dsn,
            "ATENDE_NAMESPACE": self.keys.namespace,
            "ATENDE_STREAM_PARTITIONS": str(self.settings.stream_partitions),
            "ATENDE_CONFIG": "",
        }
        runner = CliRunner()

        def invoke() -> Result:
            return runner.invoke(cli_app, list(args), env=env)

        # The command runs its own event loop (asyncio.run): a thread of its own.
        return await asyncio.to_thread(invoke)


@asynccontextmanager
async def running_world(
    *,
    redis_url: str,
    redis: aioredis.Redis,
    keys: KeySpace,
    pool: asyncpg.Pool,
    dsn: str,
    tmp_path: Path,
    channel_yaml: str,
    channel_id: str,
    provider: Provider,
    contact: str,
    extra_consumers: Sequence[Consumer] = (),
    loop_consumers: Sequence[Consumer] = LOOP_CONSUMERS,
    conversations: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[World]:
    """Run the loop's workers (and ``extra_consumers``) for a tenant with one channel.

    ``loop_consumers`` replaces the loop's own (leave the agent out to answer for it).
    """
    async with AsyncExitStack() as stack:
        llm = await stack.enter_async_context(ScriptedOpenAIServer())
        path = tmp_path / "atende.yaml"
        path.write_text(f"tenants:\n  - id: {TENANT}\n    channels:\n{channel_yaml}")
        channels = load_yaml_model(path, ChannelsConfig, env or {})
        async with pool.acquire() as conn:
            await record_tenants_and_channels(conn, channels)
        agents = AgentProfilesConfig.model_validate(
            [{"tenant": TENANT, "profile": "triage", "model": "gpt-test", "provider": "openai"}]
        )
        sections = {
            "tenants": channels,
            "agents": agents,
            "conversations": ConversationsConfig.model_validate(conversations or {}),
            "llm": FAST_LLM,
        }
        settings = settings_for(llm)
        publisher = Publisher(redis, keys, partitions=settings.stream_partitions)
        resources = Resources(settings, redis, keys, CATALOG, publisher, pool, sections)
        consumers = [*loop_consumers, *extra_consumers]
        await stack.enter_async_context(consumers_running(consumers, resources))
        yield World(
            channel_id, provider, contact, llm, publisher, pool, redis, keys, settings,
            redis_url, dsn, channels,
        )  # fmt: skip
