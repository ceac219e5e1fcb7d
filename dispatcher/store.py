"""What the dispatcher writes to Postgres: contacts, conversations, inbound messages, turns.

Every write is idempotent, so a redelivered event writes nothing new: a contact is found by
its provider id, a conversation by the ingress's id, a message by its provider message id, a
turn by its id. A turn's row and the conversation's ``last_fencing_token`` are written before
the turn is published, because the tool gateway and the memory manager check tokens there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from events.envelope import Envelope
from events.types.inbox import InboxMessageReceived

ConversationStatus = Literal["open", "human", "closed"]

_CONTACT = """
INSERT INTO contacts (tenant_id, contact_id, provider, provider_contact_id, display_name, phone)
VALUES ($1, gen_random_uuid()::text, $2, $3, $4, $5)
ON CONFLICT (tenant_id, provider, provider_contact_id) DO UPDATE
   SET display_name = COALESCE(EXCLUDED.display_name, contacts.display_name),
       phone = COALESCE(EXCLUDED.phone, contacts.phone),
       updated_at = now()
RETURNING contact_id
"""

# A closed conversation that gets a message is open again; one a human holds stays theirs.
_CONVERSATION = """
INSERT INTO conversations (tenant_id, conversation_id, channel_id, contact_id, last_seq)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (tenant_id, conversation_id) DO UPDATE
   SET last_seq = GREATEST(conversations.last_seq, EXCLUDED.last_seq),
       status = CASE WHEN conversations.status = 'closed' THEN 'open'
                     ELSE conversations.status END,
       closed_at = CASE WHEN conversations.status = 'closed' THEN NULL
                        ELSE conversations.closed_at END,
       updated_at = now()
RETURNING status, assigned_to
"""

_MESSAGE = """
INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, provider_message_id,
                      seq, kind, body, occurred_at)
VALUES ($1, $2, $3, 'in', $4, $5, $6, $7::jsonb, $8)
ON CONFLICT DO NOTHING
"""

# Was this provider message id one we sent (any chunk of a split part)? Then it is our own
# message echoed back.
_OUR_OWN = """
SELECT EXISTS (SELECT 1 FROM messages
               WHERE tenant_id = $1 AND channel_id = $2 AND provider_message_id = $3
                 AND direction = 'out')
    OR EXISTS (SELECT 1 FROM message_provider_ids
               WHERE tenant_id = $1 AND channel_id = $2 AND provider_message_id = $3)
"""

_SUPERSEDE = """
UPDATE turns SET status = 'superseded', closed_at = now(), note = $3
WHERE tenant_id = $1 AND turn_id = $2 AND status = 'opened'
"""

# A resumed turn keeps its id and row and takes the new token.
_TURN = """
INSERT INTO turns (tenant_id, turn_id, conversation_id, fencing_token, agent_profile,
                   first_seq, last_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (tenant_id, turn_id) DO UPDATE
   SET fencing_token = GREATEST(turns.fencing_token, EXCLUDED.fencing_token),
       agent_profile = COALESCE(EXCLUDED.agent_profile, turns.agent_profile)
"""

_ADVANCE_FENCE = """
UPDATE conversations SET last_fencing_token = GREATEST(last_fencing_token, $3), updated_at = now()
WHERE tenant_id = $1 AND conversation_id = $2
"""

_TAG_MESSAGES = """
UPDATE messages SET turn_id = $3, fencing_token = $4
WHERE tenant_id = $1 AND conversation_id = $2 AND direction = 'in' AND seq = ANY($5::bigint[])
"""


_OPEN_STRETCH = """
INSERT INTO handoffs (tenant_id, conversation_id) VALUES ($1, $2)
ON CONFLICT (tenant_id, conversation_id) WHERE ended_at IS NULL DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """Where the conversation stands once the message is stored."""

    contact_id: str
    status: ConversationStatus
    assigned_to: str | None
    echo: bool


class DispatcherStore:
    """The dispatcher's reads and writes on one pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record_inbound(self, envelope: Envelope[InboxMessageReceived]) -> InboundRecord:
        """Store the contact, the conversation and the message, once whatever redelivers it."""
        event = envelope.payload
        contact = event.contact
        async with self._pool.acquire() as conn, conn.transaction():
            echo = bool(
                await conn.fetchval(
                    _OUR_OWN, envelope.tenant_id, event.channel_id, event.provider_message_id
                )
            )
            contact_id = await conn.fetchval(
                _CONTACT,
                envelope.tenant_id,
                event.provider,
                contact.provider_user_id,
                contact.display_name,
                contact.phone,
            )
            row = await conn.fetchrow(
                _CONVERSATION,
                envelope.tenant_id,
                envelope.conversation_id,
                event.channel_id,
                contact_id,
                event.seq,
            )
            assert row is not None  # INSERT ... RETURNING always answers one row
            if not echo:
                await conn.execute(
                    _MESSAGE,
                    envelope.tenant_id,
                    envelope.conversation_id,
                    event.channel_id,
                    event.provider_message_id,
                    event.seq,
                    event.message.kind,
                    json.dumps(_body(event)),
                    event.provider_timestamp or event.received_at,
                )
        return InboundRecord(contact_id, row["status"], row["assigned_to"], echo)

    async def record_turn(
        self,
        tenant_id: str,
        conversation_id: str,
        *,
        turn_id: str,
        token: int,
        seqs: list[int],
        agent_profile: str | None,
        superseded_turn_id: str | None = None,
    ) -> None:
        """Record an opened (or resumed) turn and make its token the conversation's current."""
        async with self._pool.acquire() as conn, conn.transaction():
            if superseded_turn_id is not None:
                await conn.execute(
                    _SUPERSEDE, tenant_id, superseded_turn_id, "superseded by a newer message"
                )
            await conn.execute(
                _TURN,
                tenant_id,
                turn_id,
                conversation_id,
                token,
                agent_profile,
                min(seqs),
                max(seqs),
            )
            await conn.execute(_ADVANCE_FENCE, tenant_id, conversation_id, token)
            await conn.execute(_TAG_MESSAGES, tenant_id, conversation_id, turn_id, token, seqs)

    async def texts(self, tenant_id: str, conversation_id: str, seqs: list[int]) -> list[str]:
        """What the messages of ``seqs`` say, in seq order (a caption or the kind for media)."""
        rows = await self._pool.fetch(
            "SELECT COALESCE(body->>'text', body->>'caption', '[' || kind || ']') AS text "
            "FROM messages WHERE tenant_id = $1 AND conversation_id = $2 AND direction = 'in' "
            "AND seq = ANY($3::bigint[]) ORDER BY seq",
            tenant_id,
            conversation_id,
            seqs,
        )
        return [row["text"] for row in rows]

    async def close_turn(
        self,
        tenant_id: str,
        turn_id: str,
        status: Literal["completed", "handed_off", "failed"],
        note: str | None = None,
    ) -> None:
        """Mark the turn ended (once; a second close changes nothing)."""
        await self._pool.execute(
            "UPDATE turns SET status = $3, note = COALESCE($4, note), closed_at = now() "
            "WHERE tenant_id = $1 AND turn_id = $2 AND status = 'opened'",
            tenant_id,
            turn_id,
            status,
            note,
        )

    async def assign_to_human(
        self, tenant_id: str, conversation_id: str, assigned_to: str = "human"
    ) -> None:
        """Mark the conversation a human's: no AI turn until it is released.

        The human stretch (a ``handoffs`` row) opens in the same transaction, once however
        often this is repeated; ``dispatcher.assignment`` closes it on release.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            assigned = await conn.fetchval(
                "UPDATE conversations SET status = 'human', assigned_to = $3, updated_at = now() "
                "WHERE tenant_id = $1 AND conversation_id = $2 RETURNING true",
                tenant_id,
                conversation_id,
                assigned_to,
            )
            if assigned:
                await conn.execute(_OPEN_STRETCH, tenant_id, conversation_id)


def _body(event: InboxMessageReceived) -> dict[str, Any]:
    body: dict[str, Any] = event.message.model_dump(mode="json")
    if event.reply_to is not None:
        body["reply_to"] = event.reply_to
    return body
