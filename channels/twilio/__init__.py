"""Twilio (SMS and WhatsApp): config, webhooks in (messages and statuses), messages out."""

from __future__ import annotations

from channels.inbound import FORM
from channels.provider import ChannelProvider, WebhookDoc
from channels.twilio.config import TwilioChannel, account_id, sending_config
from channels.twilio.inbound import SIGNATURE_HEADER, TwilioInbound
from channels.twilio.media import fetch_media
from channels.twilio.outbound import TwilioSender
from channels.twilio.webhook_schema import TWILIO_FORM


def _inbound(channel: TwilioChannel) -> TwilioInbound:
    return TwilioInbound(channel.secrets.auth_token.reveal())


provider = ChannelProvider(
    name="twilio",
    config_model=TwilioChannel,
    inbound=_inbound,
    sending_config=sending_config,
    account_id=account_id,
    sender=TwilioSender,
    fetch_media=fetch_media,
    webhook=WebhookDoc(
        content_type=FORM,
        body_schema="TwilioForm",
        schemas=lambda: {"TwilioForm": TWILIO_FORM},
        signature_headers={
            SIGNATURE_HEADER: "Twilio: base64 HMAC-SHA1(auth token, URL + sorted fields)."
        },
    ),
)
