"""A WhatsApp Business number on the Cloud API, as the config file declares it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl

from channels.base_config import ChannelBase, StrictModel
from libs.env_secret import EnvSecret


class WhatsAppSecrets(StrictModel):
    """Meta app secret (signatures), verify token (handshake), access token (sending)."""

    app_secret: EnvSecret
    verify_token: EnvSecret
    access_token: EnvSecret | None = None


class WhatsAppChannel(ChannelBase):
    """A WhatsApp Business number on the Cloud API."""

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
