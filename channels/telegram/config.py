"""A Telegram bot, as the config file declares it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import HttpUrl

from channels.base_config import ChannelBase, RecipientPace, StrictModel
from channels.sending_fields import lacking
from channels.telegram.outbound import TelegramConfig
from libs.env_secret import EnvSecret


class TelegramSecrets(StrictModel):
    """Webhook secret token (header check) and bot token (sending)."""

    secret_token: EnvSecret
    bot_token: EnvSecret | None = None


class TelegramChannel(ChannelBase):
    """A Telegram bot."""

    # Telegram's bot FAQ: no more than about one message per second to one chat, short bursts
    # tolerated before 429s begin.
    default_recipient_pace: ClassVar[RecipientPace | None] = RecipientPace(
        interval_ms=1_000, burst=3
    )

    provider: Literal["telegram"]
    secrets: TelegramSecrets
    api_base_url: HttpUrl = HttpUrl("https://api.telegram.org")


def account_id(channel: TelegramChannel) -> str | None:
    """The bot's id: the number its token starts with, when the config gives the token."""
    token = channel.secrets.bot_token
    if token is None:
        return None
    bot_id, separator, _ = token.reveal().partition(":")
    return bot_id if separator and bot_id.isdigit() else None


def sending_config(channel: TelegramChannel) -> TelegramConfig:
    """The sender's settings of ``channel``; ``ChannelCannotSend`` names what is missing."""
    token = channel.secrets.bot_token
    if token is None:
        raise lacking(channel, ("secrets.bot_token", token, "the bot's token ({env: NAME})"))
    return TelegramConfig(
        channel_id=channel.id, bot_token=token.reveal(), base_url=str(channel.api_base_url)
    )
