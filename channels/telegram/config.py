"""A Telegram bot, as the config file declares it."""

from __future__ import annotations

from typing import Literal

from pydantic import HttpUrl

from channels.base_config import ChannelBase, StrictModel
from libs.env_secret import EnvSecret


class TelegramSecrets(StrictModel):
    """Webhook secret token (header check) and bot token (sending)."""

    secret_token: EnvSecret
    bot_token: EnvSecret | None = None


class TelegramChannel(ChannelBase):
    """A Telegram bot."""

    provider: Literal["telegram"]
    secrets: TelegramSecrets
    api_base_url: HttpUrl = HttpUrl("https://api.telegram.org")
