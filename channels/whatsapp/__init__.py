"""WhatsApp Cloud API: config, webhooks in (and Meta's subscription handshake), messages out."""

from __future__ import annotations

from collections.abc import Mapping

from channels.inbound import JSON
from channels.provider import ChannelProvider, Handshake, HandshakeDoc, WebhookDoc
from channels.whatsapp.config import WhatsAppChannel, account_id, sending_config
from channels.whatsapp.inbound import SIGNATURE_HEADER, WhatsAppInbound, verify_subscription
from channels.whatsapp.media import fetch_media
from channels.whatsapp.outbound import WhatsAppCloudSender
from channels.whatsapp.typing import WhatsAppTyping
from channels.whatsapp.webhook_schema import WHATSAPP_WEBHOOK


def _inbound(channel: WhatsAppChannel) -> WhatsAppInbound:
    return WhatsAppInbound(channel.secrets.app_secret.reveal(), channel.phone_number_id)


def _subscription(channel: WhatsAppChannel, query: Mapping[str, str]) -> str:
    return verify_subscription(query, channel.secrets.verify_token.reveal())


provider = ChannelProvider(
    name="whatsapp",
    config_model=WhatsAppChannel,
    inbound=_inbound,
    sending_config=sending_config,
    account_id=account_id,
    sender=WhatsAppCloudSender,
    typing=WhatsAppTyping,
    fetch_media=fetch_media,
    webhook=WebhookDoc(
        content_type=JSON,
        body_schema="WhatsAppWebhook",
        schemas=lambda: {"WhatsAppWebhook": WHATSAPP_WEBHOOK},
        signature_headers={SIGNATURE_HEADER: "WhatsApp: sha256=HMAC-SHA256(app secret, body)."},
    ),
    handshake=Handshake(
        answer=_subscription,
        doc=HandshakeDoc(
            operation_id="verifyWhatsAppSubscription",
            summary="Meta's subscription handshake: echo hub.challenge when the token matches.",
            query={
                "hub.mode": ("Always subscribe.", {"enum": ["subscribe"]}),
                "hub.verify_token": ("The verify token set in Meta's dashboard.", None),
                "hub.challenge": ("The value to echo back.", None),
            },
            answer="The hub.challenge, as sent.",
            invalid="A hub.* parameter is missing, or hub.mode is not subscribe.",
            mismatch="hub.verify_token is not the channel's.",
        ),
    ),
)
