"""Rows and contexts for tool tests: a tenant with a contact, a conversation and an open turn."""

from __future__ import annotations

from dataclasses import dataclass, replace

import asyncpg
import redis.asyncio as aioredis

from events.envelope import Envelope
from events.types.tools import ToolCallRequested
from libs.keys import KeySpace
from libs.settings import Settings
from libs.streams.publisher import Publisher
from tool_gateway.tool import ToolContext, ToolServices


@dataclass(frozen=True, slots=True)
class SeededConversation:
    """Ids of the rows ``seed_conversation`` wrote."""

    tenant_id: str
    channel_id: str
    contact_id: str
    conversation_id: str
    turn_id: str
    fencing_token: int


async def seed_conversation(
    pool: asyncpg.Pool,
    tenant_id: str = "acme",
    *,
    phone: str = "+5511999990001",
    fencing_token: int = 1,
) -> SeededConversation:
    """Write a tenant, a WhatsApp channel, a contact, an open conversation and an open turn."""
    channel_id = f"{tenant_id}-wa"
    seeded = SeededConversation(
        tenant_id=tenant_id,
        channel_id=channel_id,
        contact_id=f"{tenant_id}-contact-1",
        conversation_id=f"{tenant_id}-conversation-1",
        turn_id=f"{tenant_id}-turn-1",
        fencing_token=fencing_token,
    )
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO tenants (tenant_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING",
            tenant_id,
        )
        await connection.execute(
            "INSERT INTO channels (tenant_id, channel_id, provider, external_id)"
            " VALUES ($1, $2, 'whatsapp', $2)",
            tenant_id,
            channel_id,
        )
        await connection.execute(
            "INSERT INTO contacts (tenant_id, contact_id, provider, provider_contact_id,"
            " display_name, phone) VALUES ($1, $2, 'whatsapp', $3, 'Maria Silva', $4)",
            tenant_id,
            seeded.contact_id,
            phone.removeprefix("+"),
            phone,
        )
        await connection.execute(
            "INSERT INTO conversations (tenant_id, conversation_id, channel_id, contact_id)"
            " VALUES ($1, $2, $3, $4)",
            tenant_id,
            seeded.conversation_id,
            channel_id,
            seeded.contact_id,
        )
        await connection.execute(
            "INSERT INTO turns (tenant_id, turn_id, conversation_id, fencing_token, first_seq,"
            " last_seq) VALUES ($1, $2, $3, $4, 1, 1)",
            tenant_id,
            seeded.turn_id,
            seeded.conversation_id,
            fencing_token,
        )
    return seeded


def tool_services(
    redis: aioredis.Redis,
    keys: KeySpace,
    pool: asyncpg.Pool | None,
    *,
    settings: object = None,
) -> ToolServices:
    """Services on the test's Redis namespace and database."""
    partitions = Settings().stream_partitions
    publisher = Publisher(redis, keys, partitions=partitions)
    return ToolServices(
        redis=redis, keys=keys, publisher=publisher, postgres=pool, settings=settings
    )


def tool_context(
    seeded: SeededConversation,
    services: ToolServices,
    *,
    agent_profile: str = "support",
    tool_call_id: str = "call-1",
    dry_run: bool = False,
    tool: str = "test.tool",
) -> ToolContext:
    """The context a tool sees when the seeded conversation's turn calls it."""
    request = Envelope.new(
        ToolCallRequested(
            turn_id=seeded.turn_id,
            fencing_token=seeded.fencing_token,
            tool_call_id=tool_call_id,
            tool=tool,
            agent_profile=agent_profile,
            dry_run=dry_run,
        ),
        tenant_id=seeded.tenant_id,
        conversation_id=seeded.conversation_id,
    )
    return ToolContext(
        tenant_id=seeded.tenant_id,
        conversation_id=seeded.conversation_id,
        turn_id=seeded.turn_id,
        fencing_token=seeded.fencing_token,
        agent_profile=agent_profile,
        tool_call_id=tool_call_id,
        dry_run=dry_run,
        request=request,
        services=services,
    )


def with_services(context: ToolContext, services: ToolServices) -> ToolContext:
    """The same call, with other services (e.g. an HTTP session or a knowledge base)."""
    return replace(context, services=services)
