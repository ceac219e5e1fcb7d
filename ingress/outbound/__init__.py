"""Outbound channel adapters: send a reply's parts through a provider's API.

Each adapter is a ``ChannelSender`` built from its config, the process's shared
``aiohttp.ClientSession``, the channel's breaker and a retry policy. Failures are
``SendError`` subclasses that say whether trying again can help.
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
from ingress.outbound.retry import RetryPolicy
from ingress.outbound.sender import ChannelSender, SentMessage
from ingress.outbound.telegram import TelegramConfig, TelegramSender
from ingress.outbound.twilio import TwilioConfig, TwilioSender
from ingress.outbound.whatsapp import WhatsAppCloudConfig, WhatsAppCloudSender

__all__ = [
    "AuthFailed",
    "ChannelBreaker",
    "ChannelCircuitOpen",
    "ChannelSender",
    "ChatwootConfig",
    "ChatwootSender",
    "ConversationStatus",
    "GenericConfig",
    "GenericSender",
    "NoBreaker",
    "OutsideMessagingWindow",
    "ProviderUnavailable",
    "RateLimited",
    "Rejected",
    "RetryPolicy",
    "SendError",
    "SentMessage",
    "TelegramConfig",
    "TelegramSender",
    "TwilioConfig",
    "TwilioSender",
    "UnsupportedPart",
    "WhatsAppCloudConfig",
    "WhatsAppCloudSender",
    "channel_breaker",
]
