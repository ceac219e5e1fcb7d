"""Twilio webhooks through the endpoint: the signed URL is the one Twilio requested, byte for byte.

Twilio signs the full URL it called, query string as it wrote it (percent-encoding kept), then
the sorted form. Behind a proxy the channel's ``public_url`` replaces scheme, host and path;
the query must still be the one received, not a decoded copy. Refusals name no URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from yarl import URL

from channels.config import ChannelsConfig
from ingress.wiring import build_ingress_app
from libs.keys import KeySpace

AUTH_TOKEN = "12345678901234567890123456789012"
PUBLIC_URL = "https://atende.example.com/hooks/twilio/tw-proxy"
FORM = (Path(__file__).parent / "fixtures" / "twilio" / "sms_text.form").read_bytes()
QUERY = "a=b%20c&x=%2F&p=1+2&e=%3D%26"


def channels(public_url: str | None) -> ChannelsConfig:
    """One Twilio channel, behind a proxy at ``public_url`` when given."""
    channel: dict[str, object] = {
        "id": "tw-proxy",
        "provider": "twilio",
        "secrets": {"auth_token": {"env": "TWILIO_AUTH_TOKEN"}},
    }
    if public_url is not None:
        channel["public_url"] = public_url
    data = {"tenants": [{"id": "acme", "channels": [channel]}]}
    return ChannelsConfig.model_validate(data, context={"env": {"TWILIO_AUTH_TOKEN": AUTH_TOKEN}})


def twilio_signature(url: str, form: bytes, token: str = AUTH_TOKEN) -> str:
    """``X-Twilio-Signature`` as Twilio computes it: the URL, then sorted names and values."""
    fields = sorted(parse_qsl(form.decode(), keep_blank_values=True))
    signed = url + "".join(name + value for name, value in fields)
    digest = hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


async def serving(
    redis: aioredis.Redis, keys: KeySpace, public_url: str | None
) -> AsyncIterator[str]:
    """The ingress for ``channels(public_url)``; yields its base URL."""
    app = build_ingress_app(
        channels(public_url),
        redis=redis,
        keys=keys,
        partitions=2,
        capacity=10_000,
        backlog_full_retry_after_s=30,
        checks={},
    )
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url(""))
    finally:
        await server.close()


@pytest.fixture
async def proxied(redis: aioredis.Redis, keys: KeySpace) -> AsyncIterator[str]:
    """The ingress of a Twilio channel whose ``public_url`` is ``PUBLIC_URL``."""
    async for base_url in serving(redis, keys, PUBLIC_URL):
        yield base_url


async def post(url: str, signature: str) -> tuple[int, str]:
    """POST the form to ``url`` exactly as written (no re-encoding); status and answer text."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
    }
    async with (
        ClientSession() as http,
        http.post(URL(url, encoded=True), data=FORM, headers=headers) as response,
    ):
        return response.status, await response.text()


async def test_behind_a_proxy_a_percent_encoded_query_verifies_as_twilio_signed_it(
    proxied: str,
) -> None:
    signature = twilio_signature(f"{PUBLIC_URL}?{QUERY}", FORM)
    status, answer = await post(f"{proxied}/webhooks/twilio/tw-proxy?{QUERY}", signature)
    assert status == 200, answer


async def test_without_a_proxy_a_percent_encoded_query_verifies_as_twilio_signed_it(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    async for base_url in serving(redis, keys, None):
        called = f"{base_url}/webhooks/twilio/tw-proxy?{QUERY}"
        status, answer = await post(called, twilio_signature(called, FORM))
        assert status == 200, answer


async def test_a_refused_signature_names_neither_the_public_url_nor_the_token(
    proxied: str,
) -> None:
    signature = twilio_signature(f"{PUBLIC_URL}?{QUERY}", FORM, token="0" * 32)
    status, answer = await post(f"{proxied}/webhooks/twilio/tw-proxy?{QUERY}", signature)
    assert status == 401
    for internal in ("atende.example.com", "/hooks/", "http", QUERY, AUTH_TOKEN):
        assert internal not in answer, f"the answer names {internal!r}: {answer}"
    assert "X-Twilio-Signature" in answer, "the failed check is still named"
