"""Who holds a conversation: handing it back from a human to the AI, and its human stretches.

A conversation goes to a human through ``DispatcherStore.assign_to_human`` (delivery calls it
when a turn ends in a handoff), which opens a ``handoffs`` row. ``ConversationRelease`` is the
one way back, shared by ``atende conversations release`` and a Chatwoot agent resolving the
conversation: Postgres no longer says ``human``, the row's ``ended_at`` marks where the human
stretch ended in the history, and the mailbox forgets what waited (those messages were the
human's; the AI never answers them). The next new message opens a turn as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from dispatcher.mailbox import Mailbox
from libs.errors import AtendeError

_log = structlog.get_logger("atende.dispatcher")

_STATUS = """
SELECT status FROM conversations WHERE tenant_id = $1 AND conversation_id = $2
"""

_RELEASE = """
UPDATE conversations SET status = 'open', assigned_to = NULL, updated_at = now()
WHERE tenant_id = $1 AND conversation_id = $2 AND status = 'human'
RETURNING true
"""

_END_STRETCH = """
UPDATE handoffs SET ended_at = GREATEST(now(), started_at), released_by = $3
WHERE tenant_id = $1 AND conversation_id = $2 AND ended_at IS NULL
RETURNING handoff_id
"""

# The stretch the event opened, named by the event; a second event in the same stretch (or
# one that comes after the release) finds no row of its own. A stretch that began after the
# event (a late redelivery of an earlier stretch's event) is not its own either; the minute
# of slack covers the skew between the worker's clock and the database's.
_CLAIM_STRETCH = """
UPDATE handoffs SET event_id = $3, reason = $4, requested_by = $5
WHERE tenant_id = $1 AND conversation_id = $2 AND ended_at IS NULL
  AND (event_id IS NULL OR event_id = $3)
  AND started_at <= $6::timestamptz + interval '1 minute'
RETURNING handoff_id, agents_notified_at, started_at
"""


class ConversationNotFound(AtendeError):
    """No conversation of that id (in that tenant) is on record."""


@dataclass(frozen=True, slots=True)
class Released:
    """What a release did: whether a human held the conversation, and what it dropped."""

    tenant_id: str
    conversation_id: str
    was_human: bool
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class Stretch:
    """An open human stretch, claimed by the handoff event that began it."""

    handoff_id: int
    started_at: datetime
    agents_notified: bool


class ConversationRelease:
    """Hands conversations back from a human to the AI."""

    def __init__(self, pool: asyncpg.Pool, mailbox: Mailbox) -> None:
        self._pool = pool
        self._mailbox = mailbox

    async def release(self, tenant_id: str, conversation_id: str, *, released_by: str) -> Released:
        """Return the conversation to the AI; a conversation no human holds is left as it is.

        Raises ``ConversationNotFound`` when the tenant has no such conversation. Safe to
        repeat: the Redis step first (it only drops what a human's messages left), then the
        Postgres step, so a crash between them is mended by running it again.
        """
        status = await self._pool.fetchval(_STATUS, tenant_id, conversation_id)
        if status is None:
            raise ConversationNotFound(
                f"tenant '{tenant_id}' has no conversation '{conversation_id}'"
            )
        if status != "human":
            return Released(tenant_id, conversation_id, was_human=False)
        conversation = self._mailbox.conversation(tenant_id, conversation_id)
        dropped = await self._mailbox.release(conversation)
        async with self._pool.acquire() as conn, conn.transaction():
            released = await conn.fetchval(_RELEASE, tenant_id, conversation_id)
            if released:
                await conn.fetch(_END_STRETCH, tenant_id, conversation_id, released_by)
        _log.info(
            "conversation returned to the AI",
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            released_by=released_by,
            dropped=dropped,
        )
        return Released(tenant_id, conversation_id, bool(released), dropped)


class HumanStretches:
    """The ``handoffs`` rows the handoff worker reads and completes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(
        self,
        tenant_id: str,
        conversation_id: str,
        *,
        event_id: str,
        occurred_at: datetime,
        reason: str,
        requested_by: str,
    ) -> Stretch | None:
        """The open stretch this handoff event began, now named by it; ``None`` when the
        conversation was released meanwhile or the stretch belongs to another event."""
        row = await self._pool.fetchrow(
            _CLAIM_STRETCH, tenant_id, conversation_id, event_id, reason, requested_by, occurred_at
        )
        if row is None:
            return None
        return Stretch(row["handoff_id"], row["started_at"], row["agents_notified_at"] is not None)

    async def notified(self, tenant_id: str, handoff_id: int) -> None:
        """Note that the people taking over were told (a redelivery tells nobody again)."""
        await self._pool.execute(
            "UPDATE handoffs SET agents_notified_at = now() "
            "WHERE tenant_id = $1 AND handoff_id = $2 AND agents_notified_at IS NULL",
            tenant_id,
            handoff_id,
        )


async def tenants_with_conversation(pool: asyncpg.Pool, conversation_id: str) -> list[str]:
    """The tenants that have a conversation of this id, sorted."""
    rows = await pool.fetch(
        "SELECT tenant_id FROM conversations WHERE conversation_id = $1 ORDER BY tenant_id",
        conversation_id,
    )
    return [row["tenant_id"] for row in rows]
