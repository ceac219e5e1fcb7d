"""Telegram Bot API: config, webhooks in (updates), messages out."""

from __future__ import annotations

from channels.inbound import JSON
from channels.provider import ChannelProvider, WebhookDoc
from channels.telegram.config import TelegramChannel, account_id, sending_config
from channels.telegram.inbound import SECRET_TOKEN_HEADER, TelegramInbound
from channels.telegram.media import fetch_media
from channels.telegram.outbound import TelegramSender
from channels.telegram.typing import TelegramTyping
from channels.telegram.webhook_schema import TELEGRAM_UPDATE


def _inbound(channel: TelegramChannel) -> TelegramInbound:
    return TelegramInbound(channel.secrets.secret_token.reveal())


provider = ChannelProvider(
    name="telegram",
    config_model=TelegramChannel,
    inbound=_inbound,
    sending_config=sending_config,
    account_id=account_id,
    sender=TelegramSender,
    typing=TelegramTyping,
    fetch_media=fetch_media,
    webhook=WebhookDoc(
        content_type=JSON,
        body_schema="TelegramUpdate",
        schemas=lambda: {"TelegramUpdate": TELEGRAM_UPDATE},
        signature_headers={
            SECRET_TOKEN_HEADER: "Telegram: the secret_token given to setWebhook.",
        },
    ),
)
