"""``POST /webhooks/{provider}/{channel_id}``: from a provider's request to appended events."""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import orjson
import structlog
from aiohttp import web
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic import ValidationError
from redis.exceptions import RedisError

from channels.inbound import (
    FORM,
    JSON,
    Inbound,
    InboundMessage,
    InboundRelease,
    PayloadInvalid,
    SignatureInvalid,
    WebhookRequest,
)
from channels.inbound_json import field_path
from events.envelope import Envelope
from events.types import ConversationReleased, DeliveryStatusUpdated, InboxMessageReceived
from events.types.common import Provider
from ingress import problems
from ingress.append import SEQ_MARKER, Appended, AppendRequest, InboundAppender
from ingress.channel import IngressChannel
from ingress.intake import WebhookIntake
from libs.observability.tracing import current_trace_headers

_log = structlog.get_logger("atende.ingress")


class WebhookEndpoint:
    """Verifies, normalizes and appends the webhooks of every configured channel."""

    def __init__(
        self,
        channels: Mapping[tuple[str, str], IngressChannel],
        appender: InboundAppender,
        limiter: MovingWindowRateLimiter,
        *,
        backlog_full_retry_after_s: int,
    ) -> None:
        self._channels = channels
        self._limiter = limiter
        self._intake = WebhookIntake(appender, limiter)
        self._backlog_full_retry_after_s = backlog_full_retry_after_s

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one webhook; see ``ingress.problems`` for every refusal."""
        provider, channel_id = request.match_info["provider"], request.match_info["channel_id"]
        channel = self._channels.get((provider, channel_id))
        if channel is None:
            return problems.unknown_channel(provider, channel_id)
        limit = channel.config.body_limit_bytes
        if request.content_length is not None and request.content_length > limit:
            return problems.body_too_large(limit)
        if request.content_type != channel.content_type:
            return problems.wrong_content_type(request.content_type, channel.content_type)
        body = await _read_body(request, limit + 1)
        if len(body) > limit:
            return problems.body_too_large(limit)
        return await self._accept(request, channel, body)

    async def _accept(
        self, request: web.Request, channel: IngressChannel, body: bytes
    ) -> web.Response:
        webhook = _webhook_request(request, channel, body)
        try:
            channel.adapter.verify(webhook)
            items = channel.adapter.parse(webhook)
        except SignatureInvalid as exc:
            _log.warning("webhook refused", channel=channel.config.id, check=exc.check)
            return problems.problem(401, "signature_invalid", str(exc), check=exc.check)
        except PayloadInvalid as exc:
            return problems.problem(400, "invalid_payload", str(exc), field=exc.field)
        except RecursionError:
            return problems.problem(400, "invalid_payload", "the body is nested too deeply")
        traceparent = _trace_headers(request)
        try:
            batch = [_event(channel, item, webhook.received_at, traceparent) for item in items]
        except ValidationError as exc:
            # The adapters bound each provider value; what is left is a combination over the
            # contract's limits, such as a channel id plus a very long sender id.
            detail, field = _contract_misfit(exc)
            return problems.problem(400, "invalid_payload", detail, field=field)
        # Counted against the channel's rate limit only once genuine: forgeries are refused
        # above and cannot spend the budget of the channel they impersonate.
        try:
            results = await self._intake.submit(channel, batch)
            if results is None:
                return problems.rate_limited(await self._retry_after_s(channel))
        except (RedisError, OSError) as exc:
            # The reason stays in our logs: a provider has no use for Redis's error text.
            _log.error(
                "webhook not stored",
                channel=channel.config.id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return problems.unavailable()
        stored = [result for result in results if isinstance(result, Appended)]
        if len(stored) < len(results):
            # Some event's partition is at capacity. Events of this webhook bound for other
            # partitions may have been appended: the provider retries the whole webhook, their
            # dedup claims turn those into duplicates, so the retry appends only the refused.
            return problems.backlog_full(self._backlog_full_retry_after_s)
        accepted = sum(not result.duplicate for result in stored)
        duplicates = len(stored) - accepted
        return web.Response(body=_answer(accepted, duplicates), content_type=JSON)

    async def _retry_after_s(self, channel: IngressChannel) -> int:
        stats = await self._limiter.get_window_stats(channel.rate_limit, channel.config.id)
        return max(1, math.ceil(stats.reset_time - time.time()))


def _contract_misfit(error: ValidationError) -> tuple[str, str]:
    """The detail and field of a normalized webhook the event contract refuses."""
    first = error.errors(include_url=False)[0]
    field = field_path(first["loc"])
    return f"the webhook does not fit the event contract: {field}: {first['msg']}", field


@functools.lru_cache(maxsize=256)
def _answer(accepted: int, duplicates: int) -> bytes:
    """The body of a 200: a few shapes repeated all day, so each is serialized once."""
    if duplicates and accepted == 0:
        return orjson.dumps({"status": "duplicate", "duplicates": duplicates})
    return orjson.dumps({"status": "accepted", "events": accepted, "duplicates": duplicates})


async def _read_body(request: web.Request, most: int) -> bytes:
    """The body, or its first ``most`` bytes when longer. ``read(n)`` alone returns only what
    has arrived so far, so a body sent in several packets would be cut short."""
    content = request.content
    first = await content.read(most)
    if content.is_eof() or not first:  # the usual case: the whole body had arrived
        return first
    chunks = [first]
    received = len(first)
    while received < most:  # bounded: each chunk is non-empty and ``most`` is finite
        chunk = await content.read(most - received)
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def _webhook_request(request: web.Request, channel: IngressChannel, body: bytes) -> WebhookRequest:
    form: list[tuple[str, str]] = []
    if channel.content_type == FORM:
        try:
            form = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            form = []  # the adapter reports the missing fields by name
    url = channel.public_url
    if url is None:
        url = _called_url(request)
    elif "?" not in url:
        # The query exactly as it arrived: signatures cover the URL the provider requested,
        # percent-encoding included, which a decoded (or re-encoded) query would not match.
        query = request.raw_path.partition("?")[2]
        if query:
            url += f"?{query}"
    return WebhookRequest(
        method=request.method,
        url=url,
        headers=request.headers,
        body=body,
        content_type=request.content_type,
        received_at=datetime.now(UTC),
        form=form,
    )


def _called_url(request: web.Request) -> str:
    """The URL as the caller wrote it: scheme, the Host header, path and query.

    What ``str(request.url)`` gives, without building and normalizing a ``URL`` per request.
    """
    return f"{request.scheme}://{request.host}{request.raw_path}"


def _trace_headers(request: web.Request) -> tuple[str, str | None]:
    """The webhook's trace context: our span's, else the caller's, else a new trace."""
    current = current_trace_headers()
    if current is not None:
        return current
    incoming = request.headers.get("traceparent", "")
    if len(incoming) == 55 and incoming.startswith("00-") and incoming[35] == "-":
        return incoming, request.headers.get("tracestate")
    # Trace and span ids need to be unique, not secret: drawn as OpenTelemetry's SDK draws
    # them (random.getrandbits), without two urandom system calls per webhook.
    trace_id = random.getrandbits(128) or 1
    span_id = random.getrandbits(64) or 1
    return f"00-{trace_id:032x}-{span_id:016x}-01", None


def inbox_payload(
    item: InboundMessage,
    *,
    channel_id: str,
    provider: Provider,
    received_at: datetime,
    seq: int = SEQ_MARKER,
) -> InboxMessageReceived:
    """The ``inbox.message.received`` payload of a normalized message.

    ``seq`` stays the marker the append script replaces with the conversation's next number.
    """
    return InboxMessageReceived(
        channel_id=channel_id,
        provider=provider,
        provider_message_id=item.provider_message_id,
        seq=seq,
        contact=item.contact,
        message=item.message,
        reply_to=item.reply_to,
        provider_timestamp=item.provider_timestamp,
        received_at=received_at,
    )


def _event(
    channel: IngressChannel,
    item: Inbound,
    received_at: datetime,
    trace: tuple[str, str | None],
) -> AppendRequest:
    config = channel.config
    key = item.conversation_key or "-"
    payload: InboxMessageReceived | DeliveryStatusUpdated | ConversationReleased
    if isinstance(item, InboundMessage):
        payload = inbox_payload(
            item, channel_id=config.id, provider=config.provider, received_at=received_at
        )
    elif isinstance(item, InboundRelease):
        payload = ConversationReleased(
            channel_id=config.id,
            released_by="channel",
            status=item.status,
            provider_timestamp=item.provider_timestamp,
        )
    else:
        payload = DeliveryStatusUpdated(
            channel_id=config.id,
            provider_message_id=item.provider_message_id,
            status=item.status,
            error=item.error,
            provider_timestamp=item.provider_timestamp,
        )
    envelope = Envelope.new(
        payload,
        tenant_id=channel.tenant_id,
        conversation_id=f"{config.id}:{key}",
        occurred_at=item.provider_timestamp or received_at,
        traceparent=trace[0],
        tracestate=trace[1],
    )
    return AppendRequest(
        envelope,
        config.id,
        item.dedup_key,
        numbered=isinstance(item, InboundMessage),
        dedup_ttl_s=config.dedup_ttl_s,
    )
