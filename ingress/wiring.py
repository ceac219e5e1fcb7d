"""From the configured channels to a running webhook application."""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis
from aiohttp import web
from opentelemetry import trace

from channels.chatwoot.config import ChatwootChannel
from channels.chatwoot.inbound import ChatwootInbound
from channels.config import Channel, ChannelsConfig
from channels.generic.config import GenericChannel
from channels.generic.inbound import GenericInbound
from channels.inbound import InboundAdapter
from channels.telegram.config import TelegramChannel
from channels.telegram.inbound import TelegramInbound
from channels.twilio.config import TwilioChannel
from channels.twilio.inbound import TwilioInbound
from channels.whatsapp.config import WhatsAppChannel
from channels.whatsapp.inbound import WhatsAppInbound
from ingress.app import ingress_app
from ingress.append import InboundAppender
from ingress.channel import IngressChannel
from ingress.handshake import whatsapp_handshake
from ingress.webhooks import WebhookEndpoint
from libs.health import ReadinessCheck
from libs.keys import KeySpace
from libs.rate_limits import redis_limiter


def inbound_adapter(channel: Channel) -> InboundAdapter:
    """The adapter that verifies and parses ``channel``'s webhooks, with its secrets."""
    if isinstance(channel, WhatsAppChannel):
        return WhatsAppInbound(channel.secrets.app_secret.reveal(), channel.phone_number_id)
    if isinstance(channel, TwilioChannel):
        return TwilioInbound(channel.secrets.auth_token.reveal())
    if isinstance(channel, TelegramChannel):
        return TelegramInbound(channel.secrets.secret_token.reveal())
    if isinstance(channel, ChatwootChannel):
        return ChatwootInbound(channel.secrets.webhook_secret.reveal())
    if isinstance(channel, GenericChannel):
        return GenericInbound(channel.secrets.signing_secret.reveal())
    raise TypeError(f"no inbound adapter for provider {channel.provider!r}")


def ingress_channels(config: ChannelsConfig) -> dict[tuple[str, str], IngressChannel]:
    """Every configured channel, keyed by the (provider, channel id) of its webhook URL."""
    return {
        (channel.provider, channel.id): IngressChannel(tenant.id, channel, inbound_adapter(channel))
        for tenant in config.tenants
        for channel in tenant.channels
    }


def build_ingress_app(
    config: ChannelsConfig,
    *,
    redis: aioredis.Redis,
    keys: KeySpace,
    partitions: int,
    capacity: int,
    backlog_full_retry_after_s: int,
    checks: Mapping[str, ReadinessCheck],
    tracer: trace.Tracer | None = None,
) -> web.Application:
    """The webhook routes of every configured channel, with health and metrics.

    A webhook whose events find their partition holding ``capacity`` entries is answered 503
    with ``Retry-After: backlog_full_retry_after_s``.
    """
    channels = ingress_channels(config)
    appender = InboundAppender(redis, keys, partitions=partitions, capacity=capacity)
    endpoint = WebhookEndpoint(
        channels,
        appender,
        redis_limiter(redis, keys),
        backlog_full_retry_after_s=backlog_full_retry_after_s,
    )
    return ingress_app(
        endpoint, checks, handshakes={"whatsapp": whatsapp_handshake(channels)}, tracer=tracer
    )
