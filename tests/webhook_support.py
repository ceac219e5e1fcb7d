"""A WhatsApp channel served by the real webhook endpoint, and webhooks to post to it."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from opentelemetry import trace

from channels.config import ChannelsConfig
from channels.registry import PROVIDERS
from channels.whatsapp.config import WhatsAppChannel
from channels.whatsapp.inbound import WhatsAppInbound
from events.catalog import CATALOG
from events.partitions import partition_for
from events.streams import INBOX_MESSAGE_RECEIVED
from ingress.app import ingress_app
from ingress.append import InboundAppender
from ingress.channel import IngressChannel
from ingress.handshake import handshake_handlers
from ingress.webhooks import WebhookEndpoint
from libs.keys import KeySpace
from libs.rate_limits import redis_limiter
from libs.streams.codec import decode_entry
from tests.streams_support import entries

SECRET = "app-secret-for-tests"
PARTITIONS = 2
URL = "/webhooks/whatsapp/wa-main"
PHONE_NUMBER_ID = "106540352242922"  # the channel's number, as in the webhooks below


def config(rate_limit: str = "100/second", body_limit: int = 65_536) -> ChannelsConfig:
    """Tenant ``acme`` with one WhatsApp channel, ``wa-main``."""
    data = {
        "tenants": [
            {
                "id": "acme",
                "channels": [
                    {
                        "id": "wa-main",
                        "provider": "whatsapp",
                        "phone_number_id": PHONE_NUMBER_ID,
                        "rate_limit": rate_limit,
                        "body_limit_bytes": body_limit,
                        "secrets": {
                            "app_secret": {"env": "WA_SECRET"},
                            "verify_token": {"env": "WA_VERIFY"},
                        },
                    }
                ],
            }
        ]
    }
    env = {"WA_SECRET": SECRET, "WA_VERIFY": "verify-me"}
    return ChannelsConfig.model_validate(data, context={"env": env})


def webhook(wamid: str, text: str = "Hi, can I book a cleaning?") -> bytes:
    """A WhatsApp Cloud API text-message webhook, as Meta documents it."""
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550783881",
                                    "phone_number_id": PHONE_NUMBER_ID,
                                },
                                "contacts": [
                                    {"profile": {"name": "Ana"}, "wa_id": "5511987654321"}
                                ],
                                "messages": [
                                    {
                                        "from": "5511987654321",
                                        "id": wamid,
                                        "timestamp": "1719835199",
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The headers of ``body`` as Meta sends it, signed with ``secret``."""
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}


async def serve(
    redis_url: str,
    redis: aioredis.Redis,
    keys: KeySpace,
    channels: ChannelsConfig,
    tracer: trace.Tracer | None = None,
    *,
    capacity: int = 10_000,
    backlog_full_retry_after_s: int = 30,
) -> AsyncIterator[str]:
    """Serve the endpoint for the first channel of ``channels``; yields its base URL."""
    tenant = channels.tenants[0]
    channel = tenant.channels[0]
    assert isinstance(channel, WhatsAppChannel)
    ready: dict[tuple[str, str], IngressChannel] = {
        (channel.provider, channel.id): IngressChannel(
            tenant.id,
            channel,
            WhatsAppInbound(channel.secrets.app_secret.reveal(), channel.phone_number_id),
        )
    }
    appender = InboundAppender(redis, keys, partitions=PARTITIONS, capacity=capacity)
    endpoint = WebhookEndpoint(
        ready,
        appender,
        redis_limiter(redis, keys),
        backlog_full_retry_after_s=backlog_full_retry_after_s,
    )
    app = ingress_app(endpoint, {}, handshakes=handshake_handlers(PROVIDERS, ready), tracer=tracer)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url(""))
    finally:
        await server.close()


async def inbox(redis: aioredis.Redis, keys: KeySpace) -> list[Any]:
    """The events of the partition of Ana's conversation, decoded."""
    partition = partition_for("acme", "wa-main:5511987654321", PARTITIONS)
    found = await entries(redis, keys.stream(INBOX_MESSAGE_RECEIVED, partition))
    return [decode_entry(CATALOG, fields) for _id, fields in found]


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST ``body``; the status and the decoded JSON answer."""
    async with ClientSession() as http, http.post(url, data=body, headers=headers) as response:
        return response.status, await response.json()
