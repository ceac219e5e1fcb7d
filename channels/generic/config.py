"""An app on atende's generic JSON webhook format, as the config file declares it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl

from channels.base_config import ChannelBase, StrictModel
from channels.generic.outbound import GenericConfig
from channels.sending_fields import lacking
from libs.env_secret import EnvSecret


class GenericSecrets(StrictModel):
    """Shared secret that signs both directions."""

    signing_secret: EnvSecret


class GenericChannel(ChannelBase):
    """Any app speaking atende's generic JSON webhook format."""

    provider: Literal["generic"]
    secrets: GenericSecrets
    callback_url: HttpUrl | None = Field(
        default=None, description="Where the app receives replies (signed POSTs)."
    )


def account_id(channel: GenericChannel) -> str | None:
    """The channel id: the app has no account at a provider."""
    return channel.id


def sending_config(channel: GenericChannel) -> GenericConfig:
    """The sender's settings of ``channel``; ``ChannelCannotSend`` names what is missing."""
    if channel.callback_url is None:
        raise lacking(channel, ("callback_url", None, "the app's URL that receives replies"))
    return GenericConfig(
        channel_id=channel.id,
        callback_url=str(channel.callback_url),
        signing_secret=channel.secrets.signing_secret.reveal(),
    )
