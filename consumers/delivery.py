"""Sends the agent's replies (agent.ai.response.generated) and closes their turns."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from channels.config import ChannelsConfig
from channels.sending_errors import OutsideMessagingWindow, SendError
from delivery.outbox import Outbox
from delivery.replies import PartSender, ReplyDelivery, SendRefused
from delivery.senders import OutboundSenders
from delivery.window import ServiceWindows
from dispatcher.turns import TurnGuard
from dispatcher.wiring import build_turn_machinery
from events.streams import AGENT_AI_RESPONSE_GENERATED
from events.types.agent import AgentResponseGenerated
from events.types.reply_parts import ReplyPart
from libs.errors import Reject
from libs.resources import Resources
from libs.streams import Consumer, Received


class ChannelParts:
    """Sends reply parts through the configured channels (their HTTP session opened once)."""

    def __init__(self, senders: OutboundSenders) -> None:
        self._senders = senders
        self._started = False
        self._lock = asyncio.Lock()

    async def send_part(
        self, tenant_id: str, channel_id: str, recipient: str, part: ReplyPart, *, reply_id: str
    ) -> list[str]:
        """Send one part; a provider's refusal becomes ``SendRefused``."""
        if not self._started:
            async with self._lock:
                if not self._started:
                    await self._senders.__aenter__()
                    self._started = True
        sender = self._senders.get(tenant_id, channel_id)
        parts: Sequence[ReplyPart] = (part,)
        try:
            sent = await sender.send(recipient, parts, reply_id=reply_id)
        except SendError as exc:
            retry_ms = int(exc.retry_after_s * 1000) if exc.retry_after_s is not None else None
            raise SendRefused(
                str(exc),
                retryable=exc.retryable,
                retry_after_ms=retry_ms,
                window_closed=isinstance(exc, OutsideMessagingWindow),
            ) from exc
        return [message.provider_message_id for message in sent]

    async def aclose(self) -> None:
        """Close the senders' HTTP session."""
        if self._started:
            await self._senders.aclose()
            self._started = False


class DeliveryHandler:
    """Delivers each reply; closes the channel senders when the worker stops."""

    def __init__(self, delivery: ReplyDelivery, parts: ChannelParts) -> None:
        self._delivery = delivery
        self._parts = parts

    async def __call__(self, received: Received) -> None:
        envelope = received.envelope
        if not isinstance(envelope.payload, AgentResponseGenerated):
            raise Reject(f"expected a reply, got {envelope.type}")
        await self._delivery.deliver(envelope)

    async def aclose(self) -> None:
        """Release the HTTP session."""
        await self._parts.aclose()


def build_reply_delivery(resources: Resources, parts: PartSender) -> ReplyDelivery:
    """Reply delivery on ``resources``, sending through ``parts``."""
    turns = build_turn_machinery(resources, "delivery worker")
    assert resources.postgres is not None  # checked by build_turn_machinery
    channels = resources.section("tenants", ChannelsConfig) or ChannelsConfig(tenants=[])
    guard = TurnGuard(
        resources.postgres,
        resources.redis,
        resources.keys,
        partitions=resources.settings.stream_partitions,
    )

    async def current_token(tenant_id: str, conversation_id: str, turn_id: str) -> int | None:
        refs = await guard.lookup(tenant_id, conversation_id, turn_id)
        return await guard.current_token(tenant_id, conversation_id, stored_token=refs.stored_token)

    return ReplyDelivery(
        outbox=Outbox(resources.postgres),
        sender=parts,
        current_token=current_token,
        mailbox=turns.mailbox,
        dispatcher=turns.dispatcher,
        store=turns.store,
        publish=resources.publisher.publish,
        config=turns.config,
        windows=ServiceWindows(resources.postgres, channels),
    )


def _build(resources: Resources) -> DeliveryHandler:
    channels = resources.section("tenants", ChannelsConfig) or ChannelsConfig(tenants=[])
    senders = OutboundSenders(
        channels,
        redis=resources.redis,
        keys=resources.keys,
        partitions=resources.settings.stream_partitions,
    )
    parts = ChannelParts(senders)
    return DeliveryHandler(build_reply_delivery(resources, parts), parts)


consumer = Consumer(
    name="delivery",
    streams=(AGENT_AI_RESPONSE_GENERATED,),
    handler_factory=_build,
    accepts={AGENT_AI_RESPONSE_GENERATED: frozenset({1})},
)
