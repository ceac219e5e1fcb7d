"""The ingress with one channel of each provider, served from a thread, and signed webhooks.

Schemathesis calls the API with blocking ``requests``, so the aiohttp server runs on its own
event loop in a thread, with its own Redis client (a client belongs to the loop that made it).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import redis.asyncio as aioredis
import requests
from aiohttp import web
from redis.exceptions import RedisError

from channels.config import ChannelsConfig
from channels.timestamped_hmac import sign
from events.types.common import Provider
from ingress.wiring import build_ingress_app
from libs.keys import KeySpace

_FORM = "application/x-www-form-urlencoded"
FIXTURES = Path(__file__).parent / "fixtures"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0

SECRETS = {
    "WA_APP_SECRET": "wa-app-secret",
    "WA_VERIFY_TOKEN": "wa-verify-token",
    "TWILIO_AUTH_TOKEN": "12345678901234567890123456789012",
    "TELEGRAM_SECRET_TOKEN": "telegram-secret-token",
    "CHATWOOT_SECRET": "chatwoot-webhook-secret",
    "GENERIC_SECRET": "generic-signing-secret",
}
SLOW_CHANNEL_ID = "wa-slow"
"""A WhatsApp channel with a tiny body limit and rate limit, to reach 413 and 429."""
SLOW_RATE_LIMIT = "2/minute"
SLOW_BODY_LIMIT_BYTES = 1024
CHANNEL_IDS: dict[Provider, str] = {
    "whatsapp": "wa-main",
    "twilio": "tw-main",
    "telegram": "tg-main",
    "chatwoot": "cw-main",
    "generic": "app-main",
}
_SECRETS_OF: dict[Provider, dict[str, str]] = {
    "whatsapp": {"app_secret": "WA_APP_SECRET", "verify_token": "WA_VERIFY_TOKEN"},
    "twilio": {"auth_token": "TWILIO_AUTH_TOKEN"},
    "telegram": {"secret_token": "TELEGRAM_SECRET_TOKEN"},
    "chatwoot": {"webhook_secret": "CHATWOOT_SECRET"},
    "generic": {"signing_secret": "GENERIC_SECRET"},
}


def channels_config() -> ChannelsConfig:
    """One tenant with one channel of every provider, and the slow WhatsApp channel."""
    channels: list[dict[str, object]] = [
        {
            "id": channel_id,
            "provider": provider,
            "secrets": {name: {"env": env} for name, env in _SECRETS_OF[provider].items()},
        }
        for provider, channel_id in CHANNEL_IDS.items()
    ]
    channels.append(
        {
            "id": SLOW_CHANNEL_ID,
            "provider": "whatsapp",
            "rate_limit": SLOW_RATE_LIMIT,
            "body_limit_bytes": SLOW_BODY_LIMIT_BYTES,
            "secrets": {name: {"env": env} for name, env in _SECRETS_OF["whatsapp"].items()},
        }
    )
    data = {"tenants": [{"id": "acme", "channels": channels}]}
    return ChannelsConfig.model_validate(data, context={"env": SECRETS})


@dataclass(frozen=True, slots=True)
class ServedIngress:
    """Where the ingress answers, and the key space its Redis keys live under."""

    base_url: str
    keys: KeySpace


@contextmanager
def served_ingress(redis_url: str, keys: KeySpace) -> Iterator[ServedIngress]:
    """Serve ``build_ingress_app`` on a free local port until the block ends."""
    started = threading.Event()
    bound: list[int] = []
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        client = aioredis.Redis.from_url(redis_url)

        async def redis_reachable() -> None:
            await client.ping()

        app = build_ingress_app(
            channels_config(),
            redis=client,
            keys=keys,
            partitions=2,
            capacity=10_000,
            backlog_full_retry_after_s=30,
            checks={"redis": redis_reachable},
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_TIMEOUT_S / 2)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            bound.append(int(runner.addresses[0][1]))
            started.set()
            await stop.wait()
        finally:
            await runner.cleanup()
            # An unreachable Redis holds nothing of this run to delete.
            with suppress(RedisError, OSError):
                await _forget(client, keys)
            await client.aclose()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported by the test thread, which waits on `started`
            failure.append(exc)
        finally:
            started.set()
            loop.close()

    thread = threading.Thread(target=run, name="ingress-under-test", daemon=True)
    thread.start()
    try:
        assert started.wait(START_TIMEOUT_S), "the ingress did not start in time"
        if failure:
            raise failure[0]
        yield ServedIngress(f"http://127.0.0.1:{bound[0]}", keys)
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(STOP_TIMEOUT_S)
        assert not thread.is_alive(), "the ingress did not stop in time"


async def _forget(client: aioredis.Redis, keys: KeySpace) -> None:
    """Delete every key the run wrote (streams, dedup claims, rate-limit windows)."""
    async for key in client.scan_iter(match=f"{keys.namespace}:*", count=1000):
        await client.unlink(key)


@dataclass(frozen=True, slots=True)
class SignedWebhook:
    """A genuine webhook of one provider, signed with its channel's secret."""

    provider: Provider
    path: str
    body: bytes
    headers: dict[str, str]


_FIXTURE_OF: dict[Provider, str] = {
    "whatsapp": "whatsapp/text.json",
    "twilio": "twilio/sms_text.form",
    "telegram": "telegram/message_text.json",
    "chatwoot": "chatwoot/message_created_text.json",
    "generic": "generic/messages.json",
}


def signed_webhooks(base_url: str) -> list[SignedWebhook]:
    """One fixture webhook per provider, signed as the provider signs it."""
    now = int(time.time())
    webhooks = []
    for provider, fixture in _FIXTURE_OF.items():
        path = f"/webhooks/{provider}/{CHANNEL_IDS[provider]}"
        body = (FIXTURES / fixture).read_bytes()
        content_type = _FORM if provider == "twilio" else "application/json"
        headers = {
            "Content-Type": content_type,
            **signature_headers(provider, base_url + path, body, now),
        }
        webhooks.append(SignedWebhook(provider, path, body, headers))
    return webhooks


SIGNATURE_HEADER_OF: dict[Provider, str] = {
    "whatsapp": "X-Hub-Signature-256",
    "twilio": "X-Twilio-Signature",
    "telegram": "X-Telegram-Bot-Api-Secret-Token",
    "chatwoot": "X-Chatwoot-Signature",
    "generic": "X-Atende-Signature",
}


def whatsapp_signature(body: bytes) -> dict[str, str]:
    """``X-Hub-Signature-256`` of ``body`` with the app secret of the WhatsApp channels."""
    digest = hmac.new(SECRETS["WA_APP_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    return {SIGNATURE_HEADER_OF["whatsapp"]: f"sha256={digest}"}


def signature_headers(provider: Provider, url: str, body: bytes, now: int) -> dict[str, str]:
    """The headers that authenticate ``body`` posted to ``url``, as ``provider`` signs them."""
    header = SIGNATURE_HEADER_OF[provider]
    if provider == "whatsapp":
        return whatsapp_signature(body)
    if provider == "twilio":
        # Twilio's scheme: the URL, then each field's name and value, fields sorted by name.
        fields = sorted(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        signed = url + "".join(name + value for name, value in fields)
        token = SECRETS["TWILIO_AUTH_TOKEN"].encode()
        return {header: base64.b64encode(hmac.new(token, signed.encode(), hashlib.sha1).digest())
                .decode()}  # fmt: skip
    if provider == "telegram":
        return {header: SECRETS["TELEGRAM_SECRET_TOKEN"]}
    secret = SECRETS["CHATWOOT_SECRET" if provider == "chatwoot" else "GENERIC_SECRET"]
    timestamp = header.replace("-Signature", "-Timestamp")
    return {timestamp: str(now), header: sign(secret.encode(), now, body)}


class ChannelSigner(requests.auth.AuthBase):
    """Signs a webhook to a configured channel as its provider would.

    A request that already carries the provider's signature header keeps it, so generated
    requests still reach the refusals too.
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the signature headers when ``request`` is an unsigned webhook of a channel."""
        parts = urlsplit(request.url or "").path.split("/")
        if request.method != "POST" or len(parts) != 4 or parts[1] != "webhooks":
            return request
        provider = next((p for p, c in CHANNEL_IDS.items() if (p, c) == (parts[2], parts[3])), None)
        if provider is None or SIGNATURE_HEADER_OF[provider] in request.headers:
            return request
        body = request.body or b""
        # A prepared request's body is bytes or str; streamed bodies are never generated here.
        raw = body.encode() if isinstance(body, str) else bytes(body)  # type: ignore[arg-type]
        request.headers.update(
            signature_headers(provider, request.url or "", raw, int(time.time()))
        )
        return request
