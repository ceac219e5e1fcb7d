"""From the configured channels to a running webhook application."""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis
from aiohttp import web
from opentelemetry import trace

from channels.config import Channel, ChannelsConfig
from channels.inbound import InboundAdapter
from channels.registry import PROVIDERS
from ingress.app import ingress_app
from ingress.append import InboundAppender
from ingress.channel import IngressChannel
from ingress.handshake import handshake_handlers
from ingress.webhooks import WebhookEndpoint
from libs.health import ReadinessCheck
from libs.keys import KeySpace
from libs.rate_limits import redis_limiter


def inbound_adapter(channel: Channel) -> InboundAdapter:
    """The adapter that verifies and parses ``channel``'s webhooks, with its secrets."""
    return PROVIDERS.of(channel).inbound(channel)


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
        endpoint, checks, handshakes=handshake_handlers(PROVIDERS, channels), tracer=tracer
    )
