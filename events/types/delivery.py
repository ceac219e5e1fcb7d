"""``delivery.status.updated``: what the provider reports about a message we sent."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from events import streams
from events.envelope import EventPayload
from events.types.common import ChannelId, Identifier, PayloadModel, ProviderMessageId

DeliveryStatus = Literal["sent", "delivered", "read", "failed"]


class DeliveryError(PayloadModel):
    """The provider's reason for a failed delivery, as it gave it."""

    code: str = Field(
        min_length=1, max_length=64, description="Provider error code, e.g. `131047`."
    )
    title: str | None = Field(default=None, max_length=1_024, description="Provider's message.")


class DeliveryStatusUpdated(EventPayload):
    """A status callback for an outbound message: sent, delivered, read or failed.

    Providers may report statuses out of order or twice; consumers keep the furthest status
    (`read` > `delivered` > `sent`) and treat `failed` as final.
    """

    event_type: ClassVar[str] = streams.DELIVERY_STATUS_UPDATED
    event_version: ClassVar[int] = 1
    stream: ClassVar[str] = streams.DELIVERY_STATUS_UPDATED

    channel_id: ChannelId = Field(description="Channel the message was sent through.")
    provider_message_id: ProviderMessageId = Field(
        description="Provider's id of the outbound message."
    )
    status: DeliveryStatus = Field(description="New status.")
    error: DeliveryError | None = Field(default=None, description="Why it failed, if it did.")
    provider_timestamp: AwareDatetime | None = Field(
        default=None, description="When the provider says the status changed."
    )
    reply_id: Identifier | None = Field(
        default=None, description="Our `reply_id` for the message, when known."
    )
