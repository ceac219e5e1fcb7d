"""Provider delivery statuses recorded on the outbound messages they describe.

A status only moves forward (``sent`` < ``delivered`` < ``read``) and ``failed`` is final, so
the comparison lives in the UPDATE itself: Postgres re-checks its WHERE clause against the row
version it locks, and two statuses of one message racing in two workers cannot regress it,
whatever order they commit in. A redelivered status finds its rank already reached and
changes nothing.
"""

from __future__ import annotations

import json
from typing import Literal

import asyncpg

from events.types.delivery import DeliveryStatusUpdated

StatusOutcome = Literal["applied", "stale", "unknown"]
"""``applied``: the row moved forward; ``stale``: it was already there or past it (a late or
repeated status, or any status after ``failed``); ``unknown``: no outbound message of ours
has this provider id (it may have been sent outside atende)."""

# One statement: the UPDATE decides (and locks), the outer SELECT only tells "stale" from
# "unknown" for the caller's log and metric. ``pending`` (claimed, not yet accepted by the
# provider) ranks lowest and ``failed`` highest, so that nothing follows it.
_ADVANCE = """
WITH target AS (
    SELECT tenant_id, message_id FROM messages
    WHERE tenant_id = $1 AND channel_id = $2 AND provider_message_id = $3 AND direction = 'out'
), advanced AS (
    UPDATE messages AS m
    SET delivery_status = $4,
        body = CASE WHEN $5::jsonb IS NULL THEN m.body ELSE m.body || $5::jsonb END,
        updated_at = now()
    FROM target
    WHERE m.tenant_id = target.tenant_id AND m.message_id = target.message_id
      AND CASE coalesce(m.delivery_status, 'pending')
              WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2
              WHEN 'read' THEN 3 WHEN 'failed' THEN 4 END
        < CASE $4::text
              WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2
              WHEN 'read' THEN 3 WHEN 'failed' THEN 4 END
    RETURNING m.message_id
)
SELECT (SELECT count(*) FROM target) AS found, (SELECT count(*) FROM advanced) AS advanced
"""


class OutboundStatuses:
    """Moves outbound messages' ``delivery_status`` forward as providers report it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, tenant_id: str, status: DeliveryStatusUpdated) -> StatusOutcome:
        """Apply ``status`` to the tenant's outbound message with its provider id, if it is
        further along; a ``failed`` status keeps the provider's error in the message's body."""
        detail = None
        if status.status == "failed" and status.error is not None:
            detail = json.dumps({"delivery_error": status.error.model_dump(mode="json")})
        row = await self._pool.fetchrow(
            _ADVANCE,
            tenant_id,
            status.channel_id,
            status.provider_message_id,
            status.status,
            detail,
        )
        assert row is not None  # an aggregate SELECT always returns its one row
        if row["advanced"]:
            return "applied"
        return "stale" if row["found"] else "unknown"
