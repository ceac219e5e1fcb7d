"""``inbox.message.received``: a contact's message, accepted and numbered by the ingress."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from events import streams
from events.envelope import EventPayload
from events.types.common import (
    ChannelId,
    E164Phone,
    PayloadModel,
    Provider,
    ProviderMessageId,
    Seq,
)
from events.types.inbound_content import InboundContent


class ContactIdentity(PayloadModel):
    """Who wrote, as the provider identifies them."""

    provider_user_id: str = Field(
        min_length=1,
        max_length=256,
        description="Provider's id of the sender, the address a reply goes to (WhatsApp "
        "`wa_id`, Telegram user id, Twilio `From` with its medium prefix: `whatsapp:+5511…` "
        "on WhatsApp, `+5511…` by SMS, …).",
    )
    phone: E164Phone | None = Field(default=None, description="E.164 number, when known.")
    display_name: str | None = Field(
        default=None, max_length=256, description="Profile name the provider shows."
    )
    username: str | None = Field(
        default=None, max_length=256, description="Handle, e.g. a Telegram `@username`."
    )


class InboxMessageReceived(EventPayload):
    """A message from a contact, verified, deduplicated and numbered by the ingress.

    The ingress claims `provider_message_id`, increments the conversation's `seq` and appends
    this event in one atomic step, so a duplicate webhook never yields a second event and
    `seq` orders a conversation's messages without gaps.
    """

    event_type: ClassVar[str] = streams.INBOX_MESSAGE_RECEIVED
    event_version: ClassVar[int] = 1
    stream: ClassVar[str] = streams.INBOX_MESSAGE_RECEIVED

    channel_id: ChannelId = Field(description="Configured channel the webhook arrived on.")
    provider: Provider = Field(description="Kind of provider behind the channel.")
    provider_message_id: ProviderMessageId = Field(
        description="Provider's id of the message (WhatsApp `wamid`, Twilio `MessageSid`, …)."
    )
    seq: Seq = Field(description="Position of the message in its conversation, from 1.")
    contact: ContactIdentity = Field(description="Who sent the message.")
    message: InboundContent = Field(description="What was sent, by `kind`.")
    reply_to: ProviderMessageId | None = Field(
        default=None, description="Provider id of the message this one quotes or answers."
    )
    provider_timestamp: AwareDatetime | None = Field(
        default=None, description="When the provider says the message was sent."
    )
    received_at: AwareDatetime = Field(description="When the ingress accepted the webhook.")
