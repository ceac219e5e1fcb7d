"""Provider delivery statuses recorded on the outbound messages they describe.

A message may have left as several provider messages (a long text split into chunks), each
with its own id and its own statuses (``message_provider_ids``, migration 0006). A status moves
its chunk forward only (``sent`` < ``delivered`` < ``read``, ``failed`` final), and the message
then takes the least advanced status of its chunks, or ``failed`` as soon as one chunk failed:
``delivered`` means the contact has the whole text, and half a text is a failure.

Both writes happen under a lock on the message's row, taken first: two workers applying
statuses of two chunks of one message run one after the other, and the second computes the
message's status from what the first committed, so neither update is lost and nothing
regresses, whatever order they commit in. A redelivered status finds its chunk already there
and changes nothing.
"""

from __future__ import annotations

import json
from typing import Literal

import asyncpg

from events.types.delivery import DeliveryStatusUpdated

StatusOutcome = Literal["applied", "stale", "unknown"]
"""``applied``: the chunk moved forward (the message with it when its aggregate moved);
``stale``: the chunk was already there or past it (a late or repeated status, or any status
after ``failed``); ``unknown``: no outbound message of ours has this provider id (it may have
been sent outside atende)."""

# The message a provider id belongs to, locked: through its chunk row, or, for a message sent
# before chunks were recorded, through messages.provider_message_id.
_LOCK_MESSAGE = """
SELECT m.message_id FROM messages m
WHERE m.tenant_id = $1 AND m.direction = 'out'
  AND m.message_id = coalesce(
      (SELECT p.message_id FROM message_provider_ids p
       WHERE p.tenant_id = $1 AND p.channel_id = $2 AND p.provider_message_id = $3),
      (SELECT x.message_id FROM messages x
       WHERE x.tenant_id = $1 AND x.channel_id = $2 AND x.provider_message_id = $3
         AND x.direction = 'out'))
FOR UPDATE
"""

# A message recorded before 0006 has no chunk rows: its one id becomes chunk 0, at its status.
_ADOPT = """
INSERT INTO message_provider_ids (tenant_id, channel_id, provider_message_id, message_id,
                                  chunk, delivery_status)
SELECT tenant_id, channel_id, provider_message_id, message_id, 0,
       CASE WHEN delivery_status IN ('delivered', 'read', 'failed') THEN delivery_status
            ELSE 'sent' END
FROM messages
WHERE tenant_id = $1 AND message_id = $2 AND provider_message_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM message_provider_ids
                  WHERE tenant_id = $1 AND message_id = $2)
ON CONFLICT DO NOTHING
"""

_ADVANCE_CHUNK = """
UPDATE message_provider_ids SET delivery_status = $4, updated_at = now()
WHERE tenant_id = $1 AND channel_id = $2 AND provider_message_id = $3
  AND delivery_status_rank(delivery_status) < delivery_status_rank($4)
RETURNING chunk
"""

# The message's status: failed if any chunk failed, else the least advanced chunk's.
_ADVANCE_MESSAGE = """
UPDATE messages AS m
SET delivery_status = agg.status,
    body = CASE WHEN $3::jsonb IS NULL THEN m.body ELSE m.body || $3::jsonb END,
    updated_at = now()
FROM (SELECT CASE WHEN bool_or(delivery_status = 'failed') THEN 'failed'
                  ELSE (ARRAY['sent', 'delivered', 'read'])[
                           min(delivery_status_rank(delivery_status))] END AS status
      FROM message_provider_ids WHERE tenant_id = $1 AND message_id = $2) AS agg
WHERE m.tenant_id = $1 AND m.message_id = $2 AND agg.status IS NOT NULL
  AND delivery_status_rank(m.delivery_status) < delivery_status_rank(agg.status)
RETURNING m.delivery_status
"""


class OutboundStatuses:
    """Moves outbound messages' ``delivery_status`` forward as providers report it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, tenant_id: str, status: DeliveryStatusUpdated) -> StatusOutcome:
        """Apply ``status`` to the chunk with its provider id, and the message it belongs to;
        a ``failed`` status that fails the message keeps the provider's error in its body."""
        detail = None
        if status.status == "failed" and status.error is not None:
            detail = json.dumps({"delivery_error": status.error.model_dump(mode="json")})
        provider_id = status.provider_message_id
        async with self._pool.acquire() as conn, conn.transaction():
            message_id = await conn.fetchval(
                _LOCK_MESSAGE, tenant_id, status.channel_id, provider_id
            )
            if message_id is None:
                return "unknown"
            await conn.execute(_ADOPT, tenant_id, message_id)
            chunk = await conn.fetchval(
                _ADVANCE_CHUNK, tenant_id, status.channel_id, provider_id, status.status
            )
            if chunk is None:
                return "stale"
            await conn.execute(_ADVANCE_MESSAGE, tenant_id, message_id, detail)
        return "applied"
