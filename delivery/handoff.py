"""What a human handoff does once the conversation is a human's (``conversation.handoff.human``).

Delivery has already sent the handoff's reply, marked the conversation ``human`` and opened
its human stretch (``dispatcher.assignment``). Here, once per stretch:

- where people answer in the channel's own tool (Chatwoot: the provider's ``AgentInbox``),
  the conversation is opened for them with a private note: why, who asked, the last messages
  and what is known of the contact;
- the contact is told ``handoff_text`` only when the turn that handed off said nothing (a
  silent handoff); the handoff text or the agent's fallback usually did, and is never doubled.

The stretch row remembers that this was done (``agents_notified_at``), so a redelivered event
tells nobody again. A handoff event that finds no open stretch of its own (released
meanwhile, or a second event of the same stretch) does nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import asyncpg
import structlog

from channels.provider import AgentInbox
from dispatcher.assignment import HumanStretches
from dispatcher.config import ConversationsConfig
from dispatcher.dispatching import channel_of
from events.envelope import Envelope
from events.types.conversation import HumanHandoffRequested

_log = structlog.get_logger("atende.delivery")

LAST_MESSAGES = 8
_TEXT_MAX_CHARS = 300

# The conversation's last messages, both ways, newest last (a caption or the kind for media).
_LAST_MESSAGES = """
SELECT direction, COALESCE(body->>'text', body->>'caption', '[' || kind || ']') AS text
FROM (SELECT direction, body, kind, occurred_at, created_at FROM messages
      WHERE tenant_id = $1 AND conversation_id = $2
        AND (direction = 'in' OR delivery_status IN ('sent', 'delivered', 'read'))
      ORDER BY occurred_at DESC, created_at DESC LIMIT $3) AS last
ORDER BY occurred_at, created_at
"""

_TURN_SPOKE = """
SELECT EXISTS (SELECT 1 FROM messages WHERE tenant_id = $1 AND turn_id = $2 AND direction = 'out'
               AND delivery_status IN ('pending', 'sent', 'delivered', 'read'))
"""

KnownFacts = Callable[[str, str], Awaitable[Sequence[tuple[str, str]]]]
"""The (key, value) facts known of a conversation's contact, by tenant and conversation."""


class AgentInboxes(Protocol):
    """The ``AgentInbox`` of a tenant's channel, or ``None`` when people answer elsewhere."""

    async def __call__(self, tenant_id: str, channel_id: str) -> AgentInbox | None:
        """Look it up."""
        ...


class ContactNotice(Protocol):
    """Sends the contact one text once per ``reply_id``, under the turn that handed off."""

    async def __call__(
        self, envelope: Envelope[HumanHandoffRequested], text: str, *, reply_id: str
    ) -> None:
        """Send it (a repeat of ``reply_id`` sends nothing)."""
        ...


Outcome = Literal["opened_for_agents", "recorded", "already_done", "not_held"]


@dataclass(frozen=True, slots=True)
class HandoffDone:
    """What handling one handoff event did, and whether the contact was told here."""

    outcome: Outcome
    contact_notified: bool = False


class HumanTakeover:
    """Opens handed-off conversations for the humans who take them over."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        stretches: HumanStretches,
        inboxes: AgentInboxes,
        notice: ContactNotice,
        facts: KnownFacts,
        config: ConversationsConfig,
    ) -> None:
        self._pool = pool
        self._stretches = stretches
        self._inboxes = inboxes
        self._notice = notice
        self._facts = facts
        self._config = config

    async def take_over(self, envelope: Envelope[HumanHandoffRequested]) -> HandoffDone:
        """Handle one handoff event; safe to repeat."""
        handoff = envelope.payload
        tenant_id, conversation_id = envelope.tenant_id, envelope.conversation_id
        stretch = await self._stretches.claim(
            tenant_id,
            conversation_id,
            event_id=envelope.id,
            occurred_at=envelope.occurred_at,
            reason=handoff.reason,
            requested_by=handoff.requested_by,
        )
        if stretch is None:
            _log.info("handoff not held by a human any more; nothing to do", reason=handoff.reason)
            return HandoffDone("not_held")
        if stretch.agents_notified:
            return HandoffDone("already_done")
        channel_id = handoff.channel_id or channel_of(conversation_id)
        told = await self._tell_contact_if_silent(envelope, channel_id)
        inbox = await self._inboxes(tenant_id, channel_id)
        if inbox is not None:
            note = await self.summary(envelope)
            recipient = conversation_id.split(":", 1)[1]
            await inbox.open_for_agents(recipient, note, note_id=f"handoff-note:{envelope.id}")
        await self._stretches.notified(tenant_id, stretch.handoff_id)
        _log.info(
            "conversation handed to a human",
            reason=handoff.reason,
            requested_by=handoff.requested_by,
            opened_for_agents=inbox is not None,
            contact_notified=told,
        )
        return HandoffDone("opened_for_agents" if inbox else "recorded", told)

    async def summary(self, envelope: Envelope[HumanHandoffRequested]) -> str:
        """The private note: why, who asked, the last messages, what is known of the contact."""
        handoff = envelope.payload
        lines = [f"Handed over by {handoff.requested_by}: {handoff.reason}"]
        if handoff.note and handoff.note != handoff.reason:
            lines.append(handoff.note)
        rows = await self._pool.fetch(
            _LAST_MESSAGES, envelope.tenant_id, envelope.conversation_id, LAST_MESSAGES
        )
        if rows:
            lines += ["", "Last messages:"]
            for row in rows:
                who = "Contact" if row["direction"] == "in" else "Assistant"
                lines.append(f"{who}: {_shorten(row['text'])}")
        facts = await self._facts(envelope.tenant_id, envelope.conversation_id)
        if facts:
            lines += ["", "Known facts:"]
            lines += [f"- {key}: {_shorten(value)}" for key, value in facts]
        return "\n".join(lines)

    async def _tell_contact_if_silent(
        self, envelope: Envelope[HumanHandoffRequested], channel_id: str
    ) -> bool:
        turn_id = envelope.payload.turn_id
        settings = self._config.settings_for(envelope.tenant_id, channel_id)
        if turn_id is None or envelope.payload.fencing_token is None:
            return False
        if not settings.handoff_notice:
            return False
        if await self._pool.fetchval(_TURN_SPOKE, envelope.tenant_id, turn_id):
            return False  # the handoff text or the fallback already said a person will answer
        await self._notice(envelope, settings.handoff_text, reply_id=f"{turn_id}:handoff-notice")
        return True


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _TEXT_MAX_CHARS else flat[: _TEXT_MAX_CHARS - 1] + "…"
