"""Delivering one turn's reply: fenced, sent at most once, stored, and the turn closed.

For each ``agent.ai.response.generated``: the reply is dropped when its token is no longer the
conversation's (a superseded or resumed turn never speaks); each part is claimed in the outbox
by ``<reply_id>:<part>`` and sent only by the claim's owner; then the turn closes — handed to
a human when the reply says so (the messages that waited go with it), else completed, and
the next turn opens at once when the mailbox holds more (see docs/CONVERSATIONS.md). On a
channel with a customer-service window (WhatsApp), a reply the window no longer lets through
becomes the channel's template, or a handoff to a human when it has none (``delivery.window``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import structlog

from delivery.outbox import Outbox
from delivery.window import OUTSIDE_WINDOW_REASON, ServiceWindows
from dispatcher.config import ConversationsConfig
from dispatcher.dispatching import Dispatcher
from dispatcher.mailbox import Mailbox, MergePolicy, Policy
from dispatcher.store import DispatcherStore
from events.envelope import Envelope
from events.types.agent import AgentResponseGenerated
from events.types.conversation import HumanHandoffRequested
from events.types.reply_parts import ReplyPart
from libs.errors import AtendeError, Reject, RetryLater

_log = structlog.get_logger("atende.delivery")

Publish = Callable[[Envelope[Any]], Awaitable[str]]


class SendRefused(AtendeError):
    """The channel did not take a part; ``retryable`` when sending it later may work, and
    ``window_closed`` when the provider said its customer-service window is closed."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after_ms: int | None = None,
        window_closed: bool = False,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        self.window_closed = window_closed


class _WindowClosed(AtendeError):
    """The provider refused a part as outside its window, after ``sent`` parts went out."""

    def __init__(self, message: str, sent: int) -> None:
        super().__init__(message)
        self.sent = sent


class PartSender(Protocol):
    """Sends one reply part to one recipient of a channel; returns the provider's ids."""

    async def send_part(
        self, tenant_id: str, channel_id: str, recipient: str, part: ReplyPart, *, reply_id: str
    ) -> list[str]:
        """Send ``part``; raise ``SendRefused`` saying why when the channel does not take it."""
        ...


class CurrentToken(Protocol):
    """The conversation's current fencing token (``None`` when none is on record)."""

    async def __call__(self, tenant_id: str, conversation_id: str, turn_id: str) -> int | None:
        """Look it up."""
        ...


Outcome = Literal["sent", "stale", "partly_sent", "handed_off"]


@dataclass(frozen=True, slots=True)
class Delivered:
    """What delivering one reply did."""

    outcome: Outcome
    parts_sent: int
    next_turn: str | None = None


class ReplyDelivery:
    """Delivers replies and closes their turns."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        sender: PartSender,
        current_token: CurrentToken,
        mailbox: Mailbox,
        dispatcher: Dispatcher,
        store: DispatcherStore,
        publish: Publish,
        config: ConversationsConfig,
        windows: ServiceWindows | None = None,
    ) -> None:
        self._outbox = outbox
        self._windows = windows
        self._sender = sender
        self._current_token = current_token
        self._mailbox = mailbox
        self._dispatcher = dispatcher
        self._store = store
        self._publish = publish
        self._config = config

    async def deliver(self, envelope: Envelope[AgentResponseGenerated]) -> Delivered:
        """Deliver one reply event; safe to repeat (nothing is sent twice)."""
        reply = envelope.payload
        tenant_id, conversation_id = envelope.tenant_id, envelope.conversation_id
        current = await self._current_token(tenant_id, conversation_id, reply.turn_id)
        conversation = self._mailbox.conversation(tenant_id, conversation_id)
        open_turn = await self._mailbox.current(conversation)
        if (
            (current is not None and current != reply.fencing_token)
            or open_turn is None
            or (open_turn.turn_id, open_turn.token) != (reply.turn_id, reply.fencing_token)
        ):
            # Superseded, resumed elsewhere, or already answered and closed: never speaks.
            _log.info(
                "reply of a turn no longer open dropped",
                turn_id=reply.turn_id,
                token=reply.fencing_token,
                current=current,
            )
            return Delivered("stale", 0)
        parts: Sequence[ReplyPart] | None = reply.parts
        if self._windows is not None:
            parts = await self._windows.parts_to_send(tenant_id, conversation_id, reply)
        if parts is None:
            # Outside the window, no template to send: nothing reaches the contact, a human does.
            next_turn = await self._close(envelope, handoff_reason=OUTSIDE_WINDOW_REASON)
            return Delivered("handed_off", 0, next_turn)
        try:
            sent = await self._send_parts(envelope, parts)
        except _WindowClosed as closed:
            # The provider knows better than our clock: a human takes over, as above.
            next_turn = await self._close(envelope, handoff_reason=OUTSIDE_WINDOW_REASON)
            return Delivered("handed_off", closed.sent, next_turn)
        if sent < len(parts):
            return Delivered("partly_sent", sent)
        if not reply.closes_turn:
            return Delivered("sent", sent)
        next_turn = await self._close(envelope)
        return Delivered("sent", sent, next_turn)

    async def _send_parts(
        self, envelope: Envelope[AgentResponseGenerated], parts: Sequence[ReplyPart]
    ) -> int:
        reply = envelope.payload
        recipient = envelope.conversation_id.split(":", 1)[1]
        # A turn speaks once: every reply that closes it claims the turn's own slots, so two
        # replies of one turn (a fallback racing an answer, say) cannot both go out.
        claim_base = (
            f"{reply.turn_id}:{reply.fencing_token}" if reply.closes_turn else reply.reply_id
        )
        sent = 0
        for index, part in enumerate(parts):
            claim = await self._outbox.claim(
                envelope.tenant_id,
                envelope.conversation_id,
                reply.channel_id,
                reply_id=f"{claim_base}:{index}",
                turn_id=reply.turn_id,
                token=reply.fencing_token,
                kind=part.kind,
                body=part.model_dump(mode="json"),
            )
            if not claim.mine:
                if claim.status in ("pending", "failed"):
                    # Another worker sends it, one died sending it, or it failed for good:
                    # never twice. The turn's deadline resumes it if nobody finishes it.
                    return sent
                sent += 1
                continue
            try:
                ids = await self._sender.send_part(
                    envelope.tenant_id,
                    reply.channel_id,
                    recipient,
                    part,
                    reply_id=f"{reply.reply_id}:{index}",
                )
            except SendRefused as exc:
                if exc.retryable:
                    # The provider did not take it (down, rate limited): send it again later.
                    await self._outbox.release(envelope.tenant_id, claim.message_id)
                    raise RetryLater(str(exc), delay_ms=exc.retry_after_ms) from exc
                await self._outbox.failed(envelope.tenant_id, claim.message_id, str(exc))
                if exc.window_closed:
                    raise _WindowClosed(str(exc), sent) from exc
                raise Reject(str(exc)) from exc
            await self._outbox.sent(envelope.tenant_id, claim.message_id, ids)
            sent += 1
        return sent

    async def _close(
        self, envelope: Envelope[AgentResponseGenerated], *, handoff_reason: str | None = None
    ) -> str | None:
        """Close the turn; ``handoff_reason`` hands it to a human even if the reply did not."""
        reply = envelope.payload
        conversation = self._mailbox.conversation(envelope.tenant_id, envelope.conversation_id)
        settings = self._config.settings_for(envelope.tenant_id, reply.channel_id)
        handoff = reply.handoff or handoff_reason is not None
        reason = handoff_reason or reply.handoff_reason
        policy: Policy = "human" if handoff else settings.double_text
        # Delivery's own handoffs (a closed window) follow the conversation's rules, as the
        # dispatcher's do; the contract has no separate value for them.
        asked_by_agent = bool(reply.agent_profile) and handoff_reason is None
        requester: Literal["agent", "dispatcher"] = "agent" if asked_by_agent else "dispatcher"
        if handoff:
            await self._store.assign_to_human(envelope.tenant_id, envelope.conversation_id)
            await self._store.close_turn(envelope.tenant_id, reply.turn_id, "handed_off", reason)
            handoff_event = HumanHandoffRequested(
                reason=_slug(reason),
                note=reason,
                requested_by=requester,
                channel_id=reply.channel_id,
                turn_id=reply.turn_id,
                fencing_token=reply.fencing_token,
            )
            await self._publish(Envelope.derived(handoff_event, cause=envelope, role="delivery"))
        else:
            await self._store.close_turn(envelope.tenant_id, reply.turn_id, "completed")
        merge = MergePolicy(settings.merge_window_ms, settings.merge_max_wait_ms)
        closed = await self._mailbox.close(conversation, reply.fencing_token, policy, merge)
        if closed.turn is None:
            return None
        await self._dispatcher.start(closed.turn, envelope)
        return closed.turn.turn_id


def _slug(reason: str | None) -> str:
    head = (reason or "handoff").split(":", 1)[0].strip().lower()
    cleaned = "".join(c if c.isascii() and c.isalnum() else "_" for c in head).strip("_")
    if not cleaned or not cleaned[0].isalpha():
        return "handoff"
    return cleaned[:64]
