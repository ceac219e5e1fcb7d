"""A WhatsApp Business number on the Cloud API, as the config file declares it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, HttpUrl

from channels.base_config import (
    ChannelBase,
    RecipientPace,
    ServiceWindow,
    StrictModel,
    WindowTemplate,
)
from channels.send_pacing import WHATSAPP_PAIR_RATE_LIMIT
from channels.sending_fields import lacking
from channels.whatsapp.outbound import WhatsAppCloudConfig
from libs.env_secret import EnvSecret

# Free-form messages reach a contact only within 24 hours of their last message; after that
# only an approved template does (error 131047).
CUSTOMER_SERVICE_WINDOW_HOURS = 24


class WhatsAppSecrets(StrictModel):
    """Meta app secret (signatures), verify token (handshake), access token (sending)."""

    app_secret: EnvSecret
    verify_token: EnvSecret
    access_token: EnvSecret | None = None


class WhatsAppChannel(ChannelBase):
    """A WhatsApp Business number on the Cloud API."""

    default_recipient_pace: ClassVar[RecipientPace | None] = WHATSAPP_PAIR_RATE_LIMIT

    provider: Literal["whatsapp"]
    secrets: WhatsAppSecrets
    phone_number_id: str | None = Field(
        default=None,
        pattern=r"^[0-9]{5,32}$",
        description="The number's id in the Cloud API (not the phone number); needed to send. "
        "Webhook changes about the app's other numbers are skipped when set.",
    )
    api_base_url: HttpUrl = HttpUrl("https://graph.facebook.com")
    api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    list_button_label: str = Field(
        default="Options",
        min_length=1,
        max_length=20,
        description="Label of the button that opens a list (replies with over three choices).",
    )
    window_template: WindowTemplate | None = Field(
        default=None,
        description="Approved template sent instead of a reply when the contact's last message "
        "is over 24 hours old (WhatsApp's customer-service window); without one, such a "
        "conversation is handed to a human instead.",
    )

    def service_window(self) -> ServiceWindow:
        """WhatsApp's 24-hour customer-service window, opened by the contact's last message."""
        return ServiceWindow(CUSTOMER_SERVICE_WINDOW_HOURS, self.window_template)


def account_id(channel: WhatsAppChannel) -> str | None:
    """The number's Cloud API id (``phone_number_id``), when the config gives it."""
    return channel.phone_number_id


def sending_config(channel: WhatsAppChannel) -> WhatsAppCloudConfig:
    """The sender's settings of ``channel``; ``ChannelCannotSend`` names what is missing."""
    number, token = channel.phone_number_id, channel.secrets.access_token
    if number is None or token is None:
        raise lacking(
            channel,
            ("phone_number_id", number, "the number's Cloud API id"),
            ("secrets.access_token", token, "a Cloud API access token ({env: NAME})"),
        )
    return WhatsAppCloudConfig(
        channel_id=channel.id,
        phone_number_id=number,
        access_token=token.reveal(),
        api_version=channel.api_version,
        base_url=str(channel.api_base_url),
        list_button_label=channel.list_button_label,
    )
