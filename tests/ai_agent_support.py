"""The AI agent's tests: a seeded turn, the agent (and gateway) consumers running, replies read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from pydantic import SecretStr

from ai_agent.llm_setup import OpenAIChatConfig
from channels.config import ChannelsConfig
from consumers.ai_agent import agent_handler
from consumers.ai_agent import consumer as agent_consumer
from consumers.memory_manager import consumer as memory_consumer
from consumers.tool_gateway import consumer as gateway_consumer
from consumers.tool_gateway import gateway_handler
from events.catalog import CATALOG
from events.envelope import Envelope
from events.types.agent import AgentResponseGenerated
from events.types.routing import RoutingHandoffRequested, TurnMessage
from libs.keys import KeySpace
from libs.resources import Resources
from libs.settings import Settings
from libs.streams import ConsumerRunner, Publisher, RunnerConfig
from libs.streams.codec import decode_entry
from tests.llm_server import API_KEY, ScriptedOpenAIServer
from tests.streams_support import entries, eventually, fast_settings
from tests.tool_support import SeededConversation
from tool_gateway import AgentProfilesConfig

PARTITIONS = 2
WA_TOKEN = "EAAG-media-token"
BOT_TOKEN = "654321:Media-bot-token"
FAST_LLM = OpenAIChatConfig(
    timeout_s=5,
    max_attempts=2,
    max_total_s=10,
    backoff_initial_s=0.01,
    backoff_max_s=0.02,
    breaker_fail_max=2,
    breaker_reset_timeout_s=60,
)


def media_channels(whatsapp: str, telegram: str) -> ChannelsConfig:
    """Tenant acme's WhatsApp channel ``acme-wa`` and Telegram channel ``acme-tg``, their APIs
    at the given local servers (``tests.media_servers``)."""
    secret = {"env": "SECRET"}
    channels: list[dict[str, Any]] = [
        {
            "id": "acme-wa",
            "provider": "whatsapp",
            "api_base_url": whatsapp,
            "secrets": {"app_secret": secret, "verify_token": secret, "access_token": secret},
        },
        {
            "id": "acme-tg",
            "provider": "telegram",
            "api_base_url": telegram,
            "secrets": {"secret_token": secret, "bot_token": {"env": "BOT"}},
        },
    ]
    env = {"SECRET": WA_TOKEN, "BOT": BOT_TOKEN}
    return ChannelsConfig.model_validate(
        {"tenants": [{"id": "acme", "channels": channels}]}, context={"env": env}
    )


def settings_for(server: ScriptedOpenAIServer | None) -> Settings:
    """Fast settings; the scripted server as the provider, or no provider at all."""
    if server is None:
        return fast_settings(
            stream_partitions=PARTITIONS, openai_api_key=None, openai_base_url=None
        )
    return fast_settings(
        stream_partitions=PARTITIONS,
        openai_api_key=SecretStr(API_KEY),
        openai_base_url=server.base_url,
    )


def resources_for(
    redis: aioredis.Redis,
    keys: KeySpace,
    pool: asyncpg.Pool,
    settings: Settings,
    agents: Sequence[dict[str, Any]],
    channels: ChannelsConfig | None = None,
) -> Resources:
    """Resources with ``agents`` as the config file's ``agents`` section (and ``channels`` as
    its ``tenants``, e.g. for media downloads)."""
    publisher = Publisher(redis, keys, partitions=PARTITIONS)
    config: dict[str, object] = {"agents": AgentProfilesConfig.model_validate(list(agents))}
    if channels is not None:
        config["tenants"] = channels
    return Resources(settings, redis, keys, CATALOG, publisher, pool, config)


async def add_inbound(
    pool: asyncpg.Pool, seeded: SeededConversation, seq: int, body: dict[str, Any]
) -> None:
    """Store an inbound message of the seeded conversation, as the dispatcher does."""
    await pool.execute(
        "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction,"
        " provider_message_id, seq, kind, body) VALUES ($1, $2, $3, 'in', $4, $5, $6, $7::jsonb)",
        seeded.tenant_id,
        seeded.conversation_id,
        seeded.channel_id,
        f"wamid.{seq}",
        seq,
        body.get("kind", "text"),
        json.dumps(body),
    )


async def open_turn(
    pool: asyncpg.Pool, seeded: SeededConversation, turn_id: str, token: int, seq: int
) -> None:
    """Record the conversation's next turn, the open one superseded (as the dispatcher would)."""
    await pool.execute(
        "UPDATE turns SET status = 'superseded', closed_at = now()"
        " WHERE tenant_id = $1 AND conversation_id = $2 AND status = 'opened'",
        seeded.tenant_id,
        seeded.conversation_id,
    )
    await pool.execute(
        "INSERT INTO turns (tenant_id, turn_id, conversation_id, fencing_token, first_seq,"
        " last_seq) VALUES ($1, $2, $3, $4, $5, $5)",
        seeded.tenant_id,
        turn_id,
        seeded.conversation_id,
        token,
        seq,
    )
    await pool.execute(
        "UPDATE conversations SET last_fencing_token = $3 WHERE tenant_id = $1"
        " AND conversation_id = $2",
        seeded.tenant_id,
        seeded.conversation_id,
        token,
    )


def handoff(
    seeded: SeededConversation,
    *seqs: int,
    profile: str = "support",
    turn_id: str | None = None,
    token: int | None = None,
) -> Envelope[RoutingHandoffRequested]:
    """The dispatcher's event for a turn of the seeded conversation over ``seqs``."""
    return Envelope.new(
        RoutingHandoffRequested(
            turn_id=turn_id or seeded.turn_id,
            fencing_token=token or seeded.fencing_token,
            channel_id=seeded.channel_id,
            agent_profile=profile,
            messages=tuple(
                TurnMessage(seq=seq, event_id=f"in-{seq}", provider_message_id=f"wamid.{seq}")
                for seq in seqs
            ),
        ),
        tenant_id=seeded.tenant_id,
        conversation_id=seeded.conversation_id,
    )


async def published(redis: aioredis.Redis, keys: KeySpace, stream: str) -> list[Envelope[Any]]:
    """Every event on ``stream``, over all partitions."""
    found: list[Envelope[Any]] = []
    for partition in range(PARTITIONS):
        for _id, fields in await entries(redis, keys.stream(stream, partition)):
            found.append(decode_entry(CATALOG, fields))
    return found


async def audited_calls(pool: asyncpg.Pool) -> list[tuple[str, str, dict[str, Any]]]:
    """The calls the gateway ran (its audit rows): idempotency key, tool and arguments.

    Read there, not on the request stream: a stream is trimmed once every group acknowledged.
    """
    rows = await pool.fetch(
        "SELECT idempotency_key, tool, arguments FROM tool_calls ORDER BY tool_call_id"
    )
    return [(row["idempotency_key"], row["tool"], json.loads(row["arguments"])) for row in rows]


async def replies(redis: aioredis.Redis, keys: KeySpace) -> list[AgentResponseGenerated]:
    """The agent's replies so far."""
    found = await published(redis, keys, AgentResponseGenerated.stream)
    return [event.payload for event in found]


async def wait_for_replies(redis: aioredis.Redis, keys: KeySpace, count: int) -> None:
    """Until ``count`` replies are out."""

    async def out() -> bool:
        return len(await replies(redis, keys)) >= count

    await eventually(out, what=f"{count} agent replies")


@asynccontextmanager
async def running_consumers(
    resources: Resources, *, with_gateway: bool = False, with_memory: bool = False
) -> AsyncIterator[None]:
    """The agent consumer (and the tool gateway's, the memory manager's) running until the
    block ends."""
    async with AsyncExitStack() as stack:
        handlers = [(agent_consumer, agent_handler(resources, llm=FAST_LLM))]
        if with_gateway:
            handlers.append((gateway_consumer, gateway_handler(resources)))
        if with_memory:
            handlers.append((memory_consumer, memory_consumer.handler_factory(resources)))
        for consumer, handler in handlers:
            runner = ConsumerRunner(
                consumer,
                handler,
                redis=resources.redis,
                keys=resources.keys,
                registry=CATALOG,
                config=RunnerConfig.for_consumer(consumer, resources.settings),
            )
            await runner.start()
            stack.push_async_callback(_close, handler)
            stack.push_async_callback(runner.stop)
        yield


async def _close(handler: object) -> None:
    close = getattr(handler, "aclose", None)
    if close is not None:
        await close()
