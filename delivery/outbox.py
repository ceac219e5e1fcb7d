"""Outbound messages in Postgres: a reply is claimed once by its ``reply_id`` before it is sent.

The claim is the row itself (``messages_reply_uq``): of two workers racing on one reply, or a
redelivered reply event, exactly one inserts it and sends; the other finds the row. A claim
whose sender died mid-send stays ``pending``: it is never sent a second time (providers have
no idempotency key, so a resend could double the message); the turn's deadline resumes the
turn instead, and the new attempt's reply has a reply id of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

SendStatus = Literal["pending", "sent", "delivered", "read", "failed"]

_CLAIM = """
INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, reply_id, turn_id,
                      fencing_token, kind, body, delivery_status)
VALUES ($1, $2, $3, 'out', $4, $5, $6, $7, $8::jsonb, 'pending')
ON CONFLICT (tenant_id, reply_id) DO NOTHING
RETURNING message_id
"""

_EXISTING = """
SELECT message_id, delivery_status FROM messages WHERE tenant_id = $1 AND reply_id = $2
"""

# The message keeps its first provider id; every id, the first included, gets a row of its own
# in message_provider_ids, so a status of any chunk of a split part finds the message.
_SENT = """
WITH sent AS (
    UPDATE messages SET delivery_status = 'sent', provider_message_id = ($3::text[])[1],
                        updated_at = now()
    WHERE tenant_id = $1 AND message_id = $2 AND delivery_status = 'pending'
    RETURNING tenant_id, channel_id, message_id
)
INSERT INTO message_provider_ids (tenant_id, channel_id, provider_message_id, message_id, chunk)
SELECT sent.tenant_id, sent.channel_id, ids.id, sent.message_id, ids.ord - 1
FROM sent, unnest($3::text[]) WITH ORDINALITY AS ids(id, ord)
ON CONFLICT DO NOTHING
"""

_FAILED = """
UPDATE messages SET delivery_status = 'failed', body = body || $3::jsonb, updated_at = now()
WHERE tenant_id = $1 AND message_id = $2 AND delivery_status = 'pending'
"""


@dataclass(frozen=True, slots=True)
class ReplyClaim:
    """Whether this worker owns the send of a reply, and the row that records it."""

    message_id: str
    mine: bool
    status: SendStatus


class Outbox:
    """Claims, and records the outcome of, outbound messages."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(
        self,
        tenant_id: str,
        conversation_id: str,
        channel_id: str,
        *,
        reply_id: str,
        turn_id: str,
        token: int,
        kind: str,
        body: dict[str, Any],
    ) -> ReplyClaim:
        """Insert the reply's row as ``pending``; ``mine`` is False when it already existed."""
        async with self._pool.acquire() as conn:
            inserted = await conn.fetchval(
                _CLAIM,
                tenant_id,
                conversation_id,
                channel_id,
                reply_id,
                turn_id,
                token,
                kind,
                json.dumps(body),
            )
            if inserted is not None:
                return ReplyClaim(inserted, mine=True, status="pending")
            row = await conn.fetchrow(_EXISTING, tenant_id, reply_id)
        assert row is not None  # the conflicting row exists: replies are never deleted
        return ReplyClaim(row["message_id"], mine=False, status=row["delivery_status"])

    async def sent(self, tenant_id: str, message_id: str, provider_message_ids: list[str]) -> None:
        """Record that the provider accepted the message, as ``provider_message_ids`` (one per
        provider message it became, in sending order; none when the provider gives no id)."""
        await self._pool.execute(_SENT, tenant_id, message_id, provider_message_ids)

    async def release(self, tenant_id: str, message_id: str) -> None:
        """Give a claim back after a send the provider refused to take (so it was not sent):
        the next delivery of the reply claims it again."""
        await self._pool.execute(
            "DELETE FROM messages WHERE tenant_id = $1 AND message_id = $2 "
            "AND delivery_status = 'pending'",
            tenant_id,
            message_id,
        )

    async def failed(self, tenant_id: str, message_id: str, reason: str) -> None:
        """Record that the send failed for good, and why."""
        await self._pool.execute(_FAILED, tenant_id, message_id, json.dumps({"error": reason}))
