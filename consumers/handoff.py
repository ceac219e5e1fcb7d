"""Human handoffs and their end (conversation.handoff.human): open the conversation for the
people taking it over, with a note (``delivery.handoff``); hand it back to the AI when the
channel says the humans are done (``dispatcher.assignment``, as the command line does)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import structlog

from channels.config import ChannelsConfig
from channels.sending_errors import SendError
from delivery.capabilities import ChannelCapabilities
from delivery.handoff import HumanTakeover
from delivery.outbox import Outbox
from delivery.senders import OutboundSenders
from dispatcher.assignment import ConversationNotFound, ConversationRelease, HumanStretches
from dispatcher.config import ConversationsConfig
from dispatcher.mailbox import Mailbox
from events.envelope import Envelope
from events.streams import CONVERSATION_HANDOFF_HUMAN
from events.types.conversation import ConversationReleased, HumanHandoffRequested
from events.types.reply_parts import ReplyText
from libs.errors import ConfigurationError, Reject, RetryLater
from libs.resources import Resources
from libs.streams import Consumer, Received
from libs.streams.config import consumer_instance_name
from memory_manager.facts import list_facts

_log = structlog.get_logger("atende.delivery")
_FACTS_IN_NOTE = 20


class HandoffHandler:
    """Handles each handoff event; closes its HTTP sessions when the worker stops."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: ConversationsConfig,
        capabilities: ChannelCapabilities,
        senders: OutboundSenders,
        mailbox: Mailbox,
    ) -> None:
        self._pool = pool
        self._release_to_ai = ConversationRelease(pool, mailbox)
        self._capabilities = capabilities
        self._senders = senders
        self._senders_open = False
        self._outbox = Outbox(pool)
        self._takeover = HumanTakeover(
            pool=pool,
            stretches=HumanStretches(pool),
            inboxes=capabilities.agent_inbox,
            notice=self._notice,
            facts=self._facts,
            config=config,
        )

    async def __call__(self, received: Received) -> None:
        envelope = received.envelope
        if isinstance(envelope.payload, ConversationReleased):
            await self._release(envelope)
            return
        if not isinstance(envelope.payload, HumanHandoffRequested):
            raise Reject(f"expected a handoff or its release, got {envelope.type}")
        try:
            await self._takeover.take_over(envelope)
        except SendError as exc:
            if exc.retryable:
                delay = int(exc.retry_after_s * 1000) if exc.retry_after_s is not None else None
                raise RetryLater(str(exc), delay_ms=delay) from exc
            raise Reject(str(exc)) from exc

    async def _release(self, envelope: Envelope[ConversationReleased]) -> None:
        try:
            await self._release_to_ai.release(
                envelope.tenant_id,
                envelope.conversation_id,
                released_by=envelope.payload.released_by,
            )
        except ConversationNotFound:
            # Resolved in the channel's tool before atende ever stored a message of it.
            _log.info("release of a conversation atende never held; nothing to do")

    async def _notice(
        self, envelope: Envelope[HumanHandoffRequested], text: str, *, reply_id: str
    ) -> None:
        handoff = envelope.payload
        # delivery.handoff only sends a notice under the turn that handed off.
        assert handoff.turn_id is not None
        assert handoff.fencing_token is not None
        channel_id = handoff.channel_id or envelope.conversation_id.split(":", 1)[0]
        part = ReplyText(text=text)
        claim = await self._outbox.claim(
            envelope.tenant_id,
            envelope.conversation_id,
            channel_id,
            reply_id=reply_id,
            turn_id=handoff.turn_id,
            token=handoff.fencing_token,
            kind=part.kind,
            body=part.model_dump(mode="json"),
        )
        if not claim.mine:
            return  # sent (or being sent) already: never twice
        if not self._senders_open:
            await self._senders.__aenter__()
            self._senders_open = True
        sender = self._senders.get(envelope.tenant_id, channel_id)
        recipient = envelope.conversation_id.split(":", 1)[1]
        try:
            sent = await sender.send(recipient, (part,), reply_id=reply_id)
        except SendError as exc:
            if exc.retryable:
                await self._outbox.release(envelope.tenant_id, claim.message_id)
            else:
                await self._outbox.failed(envelope.tenant_id, claim.message_id, str(exc))
            raise
        ids = [message.provider_message_id for message in sent]
        await self._outbox.sent(envelope.tenant_id, claim.message_id, ids)

    async def _facts(self, tenant_id: str, conversation_id: str) -> Sequence[tuple[str, str]]:
        async with self._pool.acquire() as conn:
            contact_id = await conn.fetchval(
                "SELECT contact_id FROM conversations "
                "WHERE tenant_id = $1 AND conversation_id = $2",
                tenant_id,
                conversation_id,
            )
            if contact_id is None:
                return []
            facts = await list_facts(conn, tenant_id, contact_id, limit=_FACTS_IN_NOTE)
        return [(fact.key, fact.value) for fact in facts]

    async def aclose(self) -> None:
        """Close the HTTP sessions."""
        await self._capabilities.aclose()
        if self._senders_open:
            await self._senders.aclose()
            self._senders_open = False


def _build(resources: Resources) -> HandoffHandler:
    if resources.postgres is None:
        raise ConfigurationError("the handoff consumer needs Postgres (DATABASE_URL)")
    channels = resources.section("tenants", ChannelsConfig) or ChannelsConfig(tenants=[])
    config = resources.section("conversations", ConversationsConfig) or ConversationsConfig()
    capabilities = ChannelCapabilities(channels, redis=resources.redis, keys=resources.keys)
    senders = OutboundSenders(channels, redis=resources.redis, keys=resources.keys)
    mailbox = Mailbox(
        resources.redis,
        resources.keys,
        partitions=resources.settings.stream_partitions,
        holder=consumer_instance_name(),
        turn_ttl_ms=int(config.turn_deadline_s * 1000),
        gap_wait_ms=config.gap_wait_ms,
    )
    return HandoffHandler(resources.postgres, config, capabilities, senders, mailbox)


consumer = Consumer(
    name="handoff",
    streams=(CONVERSATION_HANDOFF_HUMAN,),
    handler_factory=_build,
    accepts={
        HumanHandoffRequested.event_type: frozenset({1}),
        ConversationReleased.event_type: frozenset({1}),
    },
    tags=frozenset({"postgres"}),
)
