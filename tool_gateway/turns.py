"""What the gateway checks about the turn a call belongs to: that it exists, and is current.

A call names its turn and carries the turn's fencing token. The turn must be a row of the
envelope's tenant and conversation (the audit row points at it, and a call of a turn nobody
opened is refused). The conversation's current token is the larger of the turn lease's fence in
Redis (``libs.leases.TurnLease``) and what Postgres records (``conversation_fencing_token``,
migration 0004: the conversation's column and its newest turn, as the memory manager reads it);
when neither is on record the call is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from events.partitions import partition_for
from libs.keys import KeySpace
from libs.leases import TurnLease

# One round trip whatever is missing: each LEFT JOIN says whether its row exists.
_LOOKUP = """
SELECT tn.tenant_id IS NOT NULL AS tenant_known,
       c.conversation_id IS NOT NULL AS conversation_known,
       t.turn_id IS NOT NULL AS turn_known,
       conversation_fencing_token($1, $2) AS stored_token
FROM (SELECT 1) AS one
LEFT JOIN tenants AS tn ON tn.tenant_id = $1
LEFT JOIN conversations AS c ON c.tenant_id = $1 AND c.conversation_id = $2
LEFT JOIN turns AS t ON t.tenant_id = $1 AND t.turn_id = $3 AND t.conversation_id = $2
"""


@dataclass(frozen=True, slots=True)
class TurnRefs:
    """Which of the rows a call names exist in the database."""

    tenant_known: bool
    conversation_known: bool
    turn_known: bool
    stored_token: int | None


class TurnGuard:
    """Looks up a call's turn and tells whether its fencing token is stale."""

    def __init__(
        self, pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace, *, partitions: int
    ) -> None:
        self._pool = pool
        self._lease = TurnLease(redis, keys)
        self._partitions = partitions

    async def lookup(self, tenant_id: str, conversation_id: str, turn_id: str) -> TurnRefs:
        """Whether the tenant, its conversation and the conversation's turn exist."""
        row = await self._pool.fetchrow(_LOOKUP, tenant_id, conversation_id, turn_id)
        assert row is not None  # SELECT from a one-row relation always answers one row
        stored = row["stored_token"]
        return TurnRefs(
            tenant_known=row["tenant_known"],
            conversation_known=row["conversation_known"],
            turn_known=row["turn_known"],
            stored_token=stored if stored else None,
        )

    async def current_token(
        self, tenant_id: str, conversation_id: str, refs: TurnRefs
    ) -> int | None:
        """The conversation's current fencing token, or ``None`` when none is on record."""
        partition = partition_for(tenant_id, conversation_id, self._partitions)
        fenced = await self._lease.current_token(
            self._lease.name_for(partition, tenant_id, conversation_id)
        )
        known = [token for token in (fenced, refs.stored_token) if token is not None]
        return max(known) if known else None
