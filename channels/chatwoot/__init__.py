"""Chatwoot inboxes (agent bot): config, webhooks in, messages out."""

from __future__ import annotations

from channels.chatwoot.config import ChatwootChannel, account_id, sending_config
from channels.chatwoot.inbound import SIGNATURE_HEADER, TIMESTAMP_HEADER, ChatwootInbound
from channels.chatwoot.outbound import ChatwootSender
from channels.chatwoot.webhook_schema import CHATWOOT_EVENT
from channels.inbound import JSON
from channels.media_http import fetch_media_url
from channels.provider import ChannelProvider, WebhookDoc
from channels.timestamped_hmac import HMAC_OF_TIMESTAMP_AND_BODY


def _inbound(channel: ChatwootChannel) -> ChatwootInbound:
    return ChatwootInbound(channel.secrets.webhook_secret.reveal())


provider = ChannelProvider(
    name="chatwoot",
    config_model=ChatwootChannel,
    inbound=_inbound,
    sending_config=sending_config,
    account_id=account_id,
    sender=ChatwootSender,
    agent_inbox=ChatwootSender,
    fetch_media=fetch_media_url,
    webhook=WebhookDoc(
        content_type=JSON,
        body_schema="ChatwootEvent",
        schemas=lambda: {"ChatwootEvent": CHATWOOT_EVENT},
        signature_headers={
            SIGNATURE_HEADER: "Chatwoot: " + HMAC_OF_TIMESTAMP_AND_BODY,
            TIMESTAMP_HEADER: "Chatwoot: Unix seconds, at most 300 s away.",
        },
    ),
)
