"""Outbound channel adapters: send a reply's parts through a provider's API.

Each adapter is a ``ChannelSender`` built from its config, the process's shared
``aiohttp.ClientSession``, the channel's breaker and a retry policy. Failures are
``SendError`` subclasses that say whether trying again can help.

Sending from the config file
----------------------------

``OutboundSenders`` (``registry.py``) builds the sender of every channel in the config file
and finds it by ``(tenant_id, channel_id)``. A channel can receive webhooks with only its
webhook secret; to send it also needs these fields (``sending_problems`` lists what each
channel lacks, e.g. ``tenants[0].channels[1].secrets.bot_token: missing; ...``):

============  ==============================================================================
provider      needed to send (optional ones in brackets)
============  ==============================================================================
whatsapp      ``phone_number_id``, ``secrets.access_token``; [``api_base_url``,
              ``api_version``, ``list_button_label``]
twilio        ``account_sid``, ``sender`` (``+1555…``, ``whatsapp:+1555…`` or ``MG…``),
              ``secrets.auth_token``; [``whatsapp`` for a WhatsApp messaging service,
              ``status_callback_url`` (default: ``public_url``), ``content_sids`` per
              template, ``api_base_url``]
telegram      ``secrets.bot_token``; [``api_base_url``]
chatwoot      ``api_base_url``, ``account_id``, ``secrets.api_access_token``
generic       ``callback_url``, ``secrets.signing_secret``
============  ==============================================================================

Every channel may also set ``sending``: ``timeout_s`` (each HTTP attempt), ``max_attempts``,
``max_total_s``, ``backoff_initial_s``, ``backoff_max_s`` (retries) and ``breaker_fail_max``,
``breaker_reset_timeout_s`` (its own breaker ``channel:{id}``, shared by every replica).

.. code-block:: yaml

    - id: tg-bot
      provider: telegram
      secrets:
        secret_token: {env: TG_SECRET_TOKEN}
        bot_token: {env: TG_BOT_TOKEN}
      sending: {max_attempts: 3, breaker_fail_max: 10}
"""

from ingress.outbound.breaker import ChannelBreaker, NoBreaker, channel_breaker
from ingress.outbound.chatwoot import ChatwootConfig, ChatwootSender, ConversationStatus
from ingress.outbound.errors import (
    AuthFailed,
    ChannelCircuitOpen,
    OutsideMessagingWindow,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    SendError,
    UnsupportedPart,
)
from ingress.outbound.generic import GenericConfig, GenericSender
from ingress.outbound.registry import (
    ChannelCannotSend,
    OutboundSenders,
    Sender,
    UnknownChannel,
    build_sender,
    sending_config,
    sending_problems,
)
from ingress.outbound.retry import RetryPolicy
from ingress.outbound.sender import ChannelSender, SentMessage
from ingress.outbound.telegram import TelegramConfig, TelegramSender
from ingress.outbound.twilio import TwilioConfig, TwilioSender
from ingress.outbound.whatsapp import WhatsAppCloudConfig, WhatsAppCloudSender

__all__ = [
    "AuthFailed",
    "ChannelBreaker",
    "ChannelCannotSend",
    "ChannelCircuitOpen",
    "ChannelSender",
    "ChatwootConfig",
    "ChatwootSender",
    "ConversationStatus",
    "GenericConfig",
    "GenericSender",
    "NoBreaker",
    "OutboundSenders",
    "OutsideMessagingWindow",
    "ProviderUnavailable",
    "RateLimited",
    "Rejected",
    "RetryPolicy",
    "SendError",
    "Sender",
    "SentMessage",
    "TelegramConfig",
    "TelegramSender",
    "TwilioConfig",
    "TwilioSender",
    "UnknownChannel",
    "UnsupportedPart",
    "WhatsAppCloudConfig",
    "WhatsAppCloudSender",
    "build_sender",
    "channel_breaker",
    "sending_config",
    "sending_problems",
]
