"""A Chatwoot inbox (agent bot webhooks), as the config file declares it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl

from channels.base_config import ChannelBase, StrictModel
from channels.chatwoot.outbound import ChatwootConfig
from channels.sending_fields import lacking
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
    inbox_id: int | None = Field(
        default=None,
        ge=1,
        description="The inbox's id in Chatwoot, recorded as the channel's account id in the "
        "database; the channel id stands in for it when unset.",
    )
    api_base_url: HttpUrl | None = Field(
        default=None, description="The Chatwoot installation, e.g. https://app.chatwoot.com."
    )


def account_id(channel: ChatwootChannel) -> str | None:
    """The inbox id, when the config gives it."""
    return str(channel.inbox_id) if channel.inbox_id is not None else None


def sending_config(channel: ChatwootChannel) -> ChatwootConfig:
    """The sender's settings of ``channel``; ``ChannelCannotSend`` names what is missing."""
    base_url, account_id = channel.api_base_url, channel.account_id
    token = channel.secrets.api_access_token
    if base_url is None or account_id is None or token is None:
        raise lacking(
            channel,
            ("api_base_url", base_url, "the Chatwoot installation's URL"),
            ("account_id", account_id, "the Chatwoot account id"),
            ("secrets.api_access_token", token, "an agent bot's access token ({env: NAME})"),
        )
    return ChatwootConfig(
        channel_id=channel.id,
        base_url=str(base_url),
        account_id=account_id,
        api_access_token=token.reveal(),
    )
