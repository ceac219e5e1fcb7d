"""The dispatcher's work on each inbound message and on each turn it opens.

An inbound message is stored, then admitted to its conversation's mailbox under the
channel's double-text policy, unless it must never start a turn (an echo of our own message,
a reaction, an edit, a conversation a human holds). A turn that opens is routed: to an agent
profile (``routing.handoff.requested``) or to a human (a reply that hands off, which delivery
sends before it marks the conversation a human's). See docs/CONVERSATIONS.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from dispatcher.config import ConversationsConfig, ResolvedTurnSettings
from dispatcher.mailbox import Mailbox, MergePolicy, Policy, Transition, Turn, WaitingMessage
from dispatcher.routing import Router
from dispatcher.store import DispatcherStore
from events.envelope import Envelope
from events.types.agent import AgentResponseGenerated
from events.types.inbox import InboxMessageReceived
from events.types.reply_parts import ReplyText
from events.types.routing import RoutingHandoffRequested, TurnMessage

_log = structlog.get_logger("atende.dispatcher")

Publish = Callable[[Envelope[Any]], Awaitable[str]]

# Kinds of inbound content that never start a turn by themselves.
_NO_TURN_KINDS = frozenset({"edit"})


def channel_of(conversation_id: str) -> str:
    """The channel of a conversation: the ingress names it ``<channel id>:<key>``."""
    return conversation_id.split(":", 1)[0]


class Dispatcher:
    """Admits inbound messages and opens, routes and publishes turns."""

    def __init__(
        self,
        *,
        store: DispatcherStore,
        mailbox: Mailbox,
        router: Router,
        publish: Publish,
        config: ConversationsConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._mailbox = mailbox
        self._router = router
        self._publish = publish
        self._config = config
        self._clock = clock

    async def admit(self, envelope: Envelope[InboxMessageReceived]) -> Transition:
        """Store one inbound message and let it join (or open) a turn."""
        event = envelope.payload
        settings = self._config.settings_for(envelope.tenant_id, event.channel_id)
        record = await self._store.record_inbound(envelope)
        conversation = self._mailbox.conversation(envelope.tenant_id, envelope.conversation_id)
        waiting = WaitingMessage(event.seq, envelope.id, event.provider_message_id)
        policy: Policy = settings.double_text
        if record.echo or record.status == "human" or not self._starts_turns(event, settings):
            policy = "human"  # stored, seen, and no turn: a tombstone keeps the seq order
        merge = MergePolicy(settings.merge_window_ms, settings.merge_max_wait_ms)
        transition = await self._mailbox.admit(conversation, waiting, policy, merge)
        _log.info(
            "message admitted",
            seq=event.seq,
            outcome=transition.outcome,
            echo=record.echo or None,
            held_by_human=record.status == "human" or None,
        )
        if transition.outcome == "rejected":
            await self._reject(envelope, settings)
        elif transition.turn is not None and transition.outcome in (
            "opened",
            "superseded",
            "duplicate",
        ):
            superseded = transition.superseded[0] if transition.superseded else None
            await self.start(transition.turn, envelope, settings, superseded)
        return transition

    async def start(
        self,
        turn: Turn,
        cause: Envelope[Any] | None,
        settings: ResolvedTurnSettings | None = None,
        superseded_turn_id: str | None = None,
    ) -> None:
        """Route an opened turn, record it, and publish it. Safe to repeat for one turn."""
        conversation = turn.conversation
        texts = await self._store.texts(
            conversation.tenant_id, conversation.conversation_id, [m.seq for m in turn.messages]
        )
        channel_id = channel_of(conversation.conversation_id)
        settings = settings or self._config.settings_for(conversation.tenant_id, channel_id)
        decision = await self._router.route(conversation.tenant_id, "\n".join(texts), self._clock())
        await self._store.record_turn(
            conversation.tenant_id,
            conversation.conversation_id,
            turn_id=turn.turn_id,
            token=turn.token,
            seqs=[m.seq for m in turn.messages],
            agent_profile=decision.profile,
            superseded_turn_id=superseded_turn_id,
        )
        if decision.to == "human":
            reply = AgentResponseGenerated(
                turn_id=turn.turn_id,
                fencing_token=turn.token,
                reply_id=f"{turn.turn_id}:{turn.token}:handoff",
                channel_id=channel_id,
                parts=(ReplyText(text=settings.handoff_text),),
                handoff=True,
                handoff_reason=decision.reason,
            )
            await self._publish(self._envelope(reply, turn, cause, "handoff"))
            return
        assert decision.profile is not None
        deadline = self._clock() + timedelta(seconds=self._config.turn_deadline_s)
        routed = RoutingHandoffRequested(
            turn_id=turn.turn_id,
            fencing_token=turn.token,
            channel_id=channel_id,
            agent_profile=decision.profile,
            intent=decision.intent,
            messages=tuple(
                TurnMessage(
                    seq=m.seq, event_id=m.event_id, provider_message_id=m.provider_message_id
                )
                for m in turn.messages
            ),
            attempt=turn.attempt,
            deadline_at=deadline,
        )
        await self._publish(self._envelope(routed, turn, cause, "route"))

    async def hand_off_stalled(self, turn: Turn) -> None:
        """A turn ran out of attempts: hand the conversation to a human, with a note."""
        conversation = turn.conversation
        channel_id = channel_of(conversation.conversation_id)
        settings = self._config.settings_for(conversation.tenant_id, channel_id)
        attempts = turn.attempt - 1
        reply = AgentResponseGenerated(
            turn_id=turn.turn_id,
            fencing_token=turn.token,
            reply_id=f"{turn.turn_id}:{turn.token}:stalled",
            channel_id=channel_id,
            parts=(ReplyText(text=settings.handoff_text),),
            handoff=True,
            handoff_reason=f"turn_timeout: the agent did not finish after {attempts} attempts",
        )
        await self._publish(self._envelope(reply, turn, None, "stalled"))

    def _starts_turns(self, event: InboxMessageReceived, settings: ResolvedTurnSettings) -> bool:
        kind = event.message.kind
        if kind == "reaction":
            return settings.reactions_start_turns
        return kind not in _NO_TURN_KINDS

    async def _reject(
        self, envelope: Envelope[InboxMessageReceived], settings: ResolvedTurnSettings
    ) -> None:
        # Answered at once, outside the open turn's flow: the reply is fenced by the open
        # turn (dropped if that turn is superseded first) and does not close it.
        conversation = self._mailbox.conversation(envelope.tenant_id, envelope.conversation_id)
        current = await self._mailbox.current(conversation)
        if current is None:
            return
        reply = AgentResponseGenerated(
            turn_id=current.turn_id,
            fencing_token=current.token,
            reply_id=f"reject:{envelope.id}",
            channel_id=envelope.payload.channel_id,
            parts=(ReplyText(text=settings.reject_text),),
            closes_turn=False,
        )
        await self._publish(Envelope.derived(reply, cause=envelope, role="dispatcher"))
        _log.info("message rejected: a turn is open", turn_id=current.turn_id)

    def _envelope(
        self, payload: Any, turn: Turn, cause: Envelope[Any] | None, key: str
    ) -> Envelope[Any]:
        # Derived from what caused it, keyed by the turn and token: republishing the same
        # turn after a crash gives the same event id.
        conversation = turn.conversation
        if cause is None:
            return Envelope.new(
                payload,
                tenant_id=conversation.tenant_id,
                conversation_id=conversation.conversation_id,
            )
        return Envelope.derived(
            payload,
            cause=cause,
            role="dispatcher",
            key=f"{turn.turn_id}:{turn.token}:{key}",
            conversation_id=conversation.conversation_id,
        )
