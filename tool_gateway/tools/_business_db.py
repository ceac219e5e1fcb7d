"""What the business-data tools share: the tenant's database and the conversation's contact."""

from __future__ import annotations

import asyncpg

from libs.postgres import PgConnection
from tool_gateway.tool import ToolContext, ToolFailed, ToolUnavailable


def postgres_pool(context: ToolContext) -> asyncpg.Pool:
    """The Postgres pool of the process; a deployment without one cannot run these tools."""
    pool = context.services.postgres
    if pool is None:
        raise ToolUnavailable("business data lives in Postgres, and this gateway has no database")
    return pool


async def conversation_contact_id(connection: PgConnection, context: ToolContext) -> str:
    """The contact of the calling conversation, looked up within the caller's tenant only.

    A tool acting "for the customer" acts for this contact and nobody else, whatever the
    arguments say.
    """
    if context.conversation_id is None:
        raise ToolFailed(
            "this call is not part of a conversation, so there is no customer to act for"
        )
    contact_id: str | None = await connection.fetchval(
        "SELECT contact_id FROM conversations WHERE tenant_id = $1 AND conversation_id = $2",
        context.tenant_id,
        context.conversation_id,
    )
    if contact_id is None:
        raise ToolFailed(
            f"conversation {context.conversation_id!r} does not exist for this tenant, so there"
            " is no customer to act for"
        )
    return contact_id
