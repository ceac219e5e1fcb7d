"""A conversation's turns: the lease that opens one, and the one check that a turn is current.

A turn is opened by taking the conversation's ``TurnLease``; each grant carries a fencing token
that only grows. Every side effect of a turn downstream (a writing tool call, a memory write,
a reply) carries that token and is refused once it is stale, through ``TurnGuard``, the only
place that decides it:

- the conversation's current token is the larger of the turn lease's fence in Redis and what
  Postgres records (``conversation_fencing_token``, migration 0004: the conversation's
  ``last_fencing_token`` or its newest turn's token), so neither a lost fence nor a turn
  recorded in only one place lets a superseded turn act;
- a token older than the current one is stale; when no token is on record at all, nothing is.

Callers that read the stored token in their own statement (inside a transaction, under a lock)
pass it in; ``TurnGuard.lookup`` reads it along with whether the turn's rows exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from events.partitions import partition_for
from libs.keys import KeySpace
from libs.leases import DEFAULT_FENCE_RETENTION_MS, Lease, LeaseGrant

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


class TurnLease(Lease):
    """The lease of a conversation's turn, named by partition, tenant and conversation."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        *,
        fence_retention_ms: int = DEFAULT_FENCE_RETENTION_MS,
    ) -> None:
        super().__init__(redis, keys, kind="turn", fence_retention_ms=fence_retention_ms)

    def name_for(self, partition: int, tenant_id: str, conversation_id: str) -> str:
        """Lease name of a conversation's turn (carries the partition's hash tag)."""
        return self._keys.turn_lease_name(partition, tenant_id, conversation_id)

    async def open_turn(
        self, partition: int, tenant_id: str, conversation_id: str, holder: str, ttl_ms: int
    ) -> LeaseGrant | None:
        """Try to open the conversation's turn; ``None`` when another worker has it."""
        return await self.acquire(
            self.name_for(partition, tenant_id, conversation_id), holder, ttl_ms
        )

    async def require_turn(
        self, partition: int, tenant_id: str, conversation_id: str, token: int
    ) -> None:
        """Raise ``StaleFencingToken`` unless ``token`` is the conversation's current turn."""
        await self.require_current(self.name_for(partition, tenant_id, conversation_id), token)


@dataclass(frozen=True, slots=True)
class TurnRefs:
    """Which of the rows a side effect names exist in the database, and the stored token."""

    tenant_known: bool
    conversation_known: bool
    turn_known: bool
    stored_token: int | None


@dataclass(frozen=True, slots=True)
class StaleTurn:
    """A turn's token that a newer one superseded."""

    token: int
    current: int

    def describe(self, turn_id: str) -> str:
        """A sentence for the refusal, e.g. for a tool result or a log line."""
        return (
            f"turn {turn_id!r} was superseded (its fencing token {self.token} is older "
            f"than {self.current})"
        )


class TurnGuard:
    """Tells whether a turn's fencing token is stale; looks up the rows a turn names."""

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
        self, tenant_id: str, conversation_id: str, *, stored_token: int | None
    ) -> int | None:
        """The conversation's current token, or ``None`` when none is on record.

        ``stored_token`` is what Postgres records (``conversation_fencing_token``), read by the
        caller, in its own statement or through ``lookup``.
        """
        partition = partition_for(tenant_id, conversation_id, self._partitions)
        fenced = await self._lease.current_token(
            self._lease.name_for(partition, tenant_id, conversation_id)
        )
        known = [token for token in (fenced, stored_token) if token is not None]
        return max(known) if known else None

    async def stale(
        self, tenant_id: str, conversation_id: str, token: int, *, stored_token: int | None
    ) -> StaleTurn | None:
        """``StaleTurn`` when a newer token than ``token`` is on record; else ``None``."""
        current = await self.current_token(tenant_id, conversation_id, stored_token=stored_token)
        if current is not None and token < current:
            return StaleTurn(token, current)
        return None
