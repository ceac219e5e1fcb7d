"""A Chatwoot inbox (agent bot webhooks), as the config file declares it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl

from channels.base_config import ChannelBase, StrictModel
from libs.env_secret import EnvSecret


class ChatwootSecrets(StrictModel):
    """Webhook signing secret and API access token."""

    webhook_secret: EnvSecret
    api_access_token: EnvSecret | None = None


class ChatwootChannel(ChannelBase):
    """A Chatwoot inbox (agent bot webhooks)."""

    provider: Literal["chatwoot"]
    secrets: ChatwootSecrets
    account_id: int | None = Field(
        default=None, ge=1, description="Chatwoot account of the inbox; needed to send."
    )
    api_base_url: HttpUrl | None = Field(
        default=None, description="The Chatwoot installation, e.g. https://app.chatwoot.com."
    )
