"""Conversations are keyed by the ingress's conversation id, not one open per contact."""

from __future__ import annotations

import asyncpg
import pytest

# As the ingress names them: `<channel id>:<the provider's conversation within the channel>`.
GROUP_A = "tg-bot:-1001234567890"
GROUP_B = "tg-bot:-1009876543210"

_INSERT = (
    "INSERT INTO conversations (tenant_id, conversation_id, channel_id, contact_id)"
    " VALUES ($1, $2, 'tg-bot', 'ana')"
)

# How a worker creates a conversation on its first message: once per id, reopened if closed.
_UPSERT = """
INSERT INTO conversations (tenant_id, conversation_id, channel_id, contact_id)
VALUES ($1, $2, 'tg-bot', 'ana')
ON CONFLICT (tenant_id, conversation_id)
    DO UPDATE SET status = 'open', closed_at = NULL, updated_at = now()
    WHERE conversations.status = 'closed'
"""


async def _contact_on_a_channel(pool: asyncpg.Pool, tenant: str = "acme") -> None:
    await pool.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $1)", tenant)
    await pool.execute(
        "INSERT INTO channels (tenant_id, channel_id, provider, external_id)"
        " VALUES ($1, 'tg-bot', 'telegram', $2)",
        tenant,
        f"{tenant}-bot",
    )
    await pool.execute(
        "INSERT INTO contacts (tenant_id, contact_id, provider, provider_contact_id)"
        " VALUES ($1, 'ana', 'telegram', '777000')",
        tenant,
    )


async def _open_conversations(pool: asyncpg.Pool, tenant: str = "acme") -> list[str]:
    rows = await pool.fetch(
        "SELECT conversation_id FROM conversations"
        " WHERE tenant_id = $1 AND channel_id = 'tg-bot' AND contact_id = 'ana'"
        " AND status <> 'closed' ORDER BY conversation_id",
        tenant,
    )
    return [row["conversation_id"] for row in rows]


async def test_one_contact_has_several_open_conversations_on_one_channel(
    pg_pool: asyncpg.Pool,
) -> None:
    await _contact_on_a_channel(pg_pool)
    # Ana writes in two Telegram groups of the same bot.
    await pg_pool.execute(_INSERT, "acme", GROUP_A)
    await pg_pool.execute(_INSERT, "acme", GROUP_B)
    await pg_pool.execute(
        "UPDATE conversations SET status = 'human' WHERE conversation_id = $1", GROUP_B
    )

    assert await _open_conversations(pg_pool) == [GROUP_A, GROUP_B]


async def test_the_same_conversation_id_is_one_conversation(pg_pool: asyncpg.Pool) -> None:
    await _contact_on_a_channel(pg_pool)
    await pg_pool.execute(_INSERT, "acme", GROUP_A)

    with pytest.raises(asyncpg.UniqueViolationError, match="conversations_pkey"):
        await pg_pool.execute(_INSERT, "acme", GROUP_A)
    assert await pg_pool.execute(_UPSERT, "acme", GROUP_A) == "INSERT 0 0"  # open: untouched
    await pg_pool.execute(
        "UPDATE conversations SET status = 'closed', closed_at = now() WHERE conversation_id = $1",
        GROUP_A,
    )
    assert await pg_pool.execute(_UPSERT, "acme", GROUP_A) == "INSERT 0 1"  # reopened

    assert await _open_conversations(pg_pool) == [GROUP_A]
    assert await pg_pool.fetchval("SELECT count(*) FROM conversations") == 1


async def test_the_same_conversation_id_in_another_tenant_is_another_conversation(
    pg_pool: asyncpg.Pool,
) -> None:
    for tenant in ("acme", "globex"):
        await _contact_on_a_channel(pg_pool, tenant)
        await pg_pool.execute(_INSERT, tenant, GROUP_A)

    assert await _open_conversations(pg_pool, "acme") == [GROUP_A]
    assert await _open_conversations(pg_pool, "globex") == [GROUP_A]


async def test_a_conversation_is_inserted_with_the_ingress_id_never_a_random_one(
    pg_pool: asyncpg.Pool,
) -> None:
    await _contact_on_a_channel(pg_pool)
    with pytest.raises(asyncpg.NotNullViolationError, match="conversation_id"):
        await pg_pool.execute(
            "INSERT INTO conversations (tenant_id, channel_id, contact_id)"
            " VALUES ('acme', 'tg-bot', 'ana')"
        )
