"""atende's generic JSON channel for any app: config, webhooks in, replies out."""

from __future__ import annotations

from channels.generic.config import GenericChannel, account_id, sending_config
from channels.generic.inbound import SIGNATURE_HEADER, TIMESTAMP_HEADER, GenericInbound
from channels.generic.outbound import GenericSender
from channels.generic.webhook_schema import generic_webhook_schemas
from channels.inbound import JSON
from channels.media_http import fetch_media_url
from channels.provider import ChannelProvider, WebhookDoc
from channels.timestamped_hmac import HMAC_OF_TIMESTAMP_AND_BODY


def _inbound(channel: GenericChannel) -> GenericInbound:
    return GenericInbound(channel.secrets.signing_secret.reveal())


provider = ChannelProvider(
    name="generic",
    config_model=GenericChannel,
    inbound=_inbound,
    sending_config=sending_config,
    account_id=account_id,
    sender=GenericSender,
    fetch_media=fetch_media_url,
    webhook=WebhookDoc(
        content_type=JSON,
        body_schema="GenericWebhook",
        schemas=generic_webhook_schemas,
        signature_headers={
            SIGNATURE_HEADER: "Generic: " + HMAC_OF_TIMESTAMP_AND_BODY,
            TIMESTAMP_HEADER: "Generic: Unix seconds, at most 300 s away.",
        },
    ),
)
