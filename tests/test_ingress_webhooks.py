"""The webhook endpoint end to end: real HTTP, real Redis, a real WhatsApp adapter."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from yarl import URL as URL_OF

from libs.keys import KeySpace
from tests.webhook_support import (
    PHONE_NUMBER_ID,
    URL,
    config,
    inbox,
    post,
    serve,
    signed,
    webhook,
)

# A sender id within the provider-id bound, too long once prefixed by the channel id.
LONG_SENDER = webhook("wamid.long").replace(
    b'"from": "5511987654321"', b'"from": "' + b"7" * 250 + b'"'
)


@pytest.fixture
async def base_url(redis_url: str, redis: aioredis.Redis, keys: KeySpace) -> AsyncIterator[str]:
    async for url in serve(redis_url, redis, keys, config()):
        yield url


async def test_a_signed_webhook_becomes_one_numbered_event_and_a_repeat_is_a_duplicate(
    base_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    body = webhook("wamid.HBgLNTUxMTk4NzY1NDMyMRUCABIYFjNFQjA")
    status, answer = await post(base_url + URL, body, signed(body))
    assert (status, answer) == (200, {"status": "accepted", "events": 1, "duplicates": 0})
    status, answer = await post(base_url + URL, body, signed(body))
    assert (status, answer) == (200, {"status": "duplicate", "duplicates": 1})
    second = webhook("wamid.second")
    await post(base_url + URL, second, signed(second))
    events = await inbox(redis, keys)
    assert [event.payload.seq for event in events] == [1, 2]
    first = events[0]
    assert first.tenant_id == "acme"
    assert first.conversation_id == "wa-main:5511987654321"
    assert first.payload.message.text == "Hi, can I book a cleaning?"
    assert first.payload.contact.display_name == "Ana"
    assert first.traceparent is not None, "every event carries a trace context"


async def test_appended_webhooks_are_logged_per_batch_with_every_provider_id_masked(
    base_url: str, log_lines: io.StringIO
) -> None:
    bodies = [webhook(f"wamid.logged.{n}") for n in range(5)]
    answers = await asyncio.gather(*(post(base_url + URL, body, signed(body)) for body in bodies))
    await post(base_url + URL, bodies[0], signed(bodies[0]))  # a provider's retry
    assert [status for status, _ in answers] == [200] * 5
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    appended = [line for line in lines if line["event"] == "webhooks appended"]
    assert {(line["tenant_id"], line["channel"]) for line in appended} == {("acme", "wa-main")}
    logged = [wamid for line in appended for wamid in line["provider_message_ids"]]
    assert sorted(logged) == sorted([f"wamid.logged.{n}" for n in range(5)] + ["wamid.logged.0"])
    assert sum(line["webhooks"] for line in appended) == 6
    assert sum(line["events"] for line in appended) == 5
    assert sum(line["duplicates"] for line in appended) == 1
    assert {c for line in appended for c in line["conversation_ids"]} == {"wa-main:55*********21"}
    assert "5511987654321" not in log_lines.getvalue()


async def test_a_webhook_about_another_number_of_the_app_adds_nothing_to_this_channel(
    base_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    # Signed with the same app secret, but about the app's other number.
    body = webhook("wamid.other-number").replace(
        f'"phone_number_id": "{PHONE_NUMBER_ID}"'.encode(), b'"phone_number_id": "119876543210001"'
    )
    assert body != webhook("wamid.other-number")
    status, answer = await post(base_url + URL, body, signed(body))
    assert (status, answer) == (200, {"status": "accepted", "events": 0, "duplicates": 0})
    assert await inbox(redis, keys) == []


async def test_the_callers_trace_context_is_carried_into_the_event(
    base_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    body = webhook("wamid.traced")
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await post(base_url + URL, body, {**signed(body), "traceparent": traceparent})
    [event] = await inbox(redis, keys)
    assert event.traceparent == traceparent


async def test_with_spans_exported_each_request_gets_a_server_span_the_event_continues(
    redis_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    caller_trace, caller_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    body = webhook("wamid.spanned")
    async for base_url in serve(redis_url, redis, keys, config(), provider.get_tracer("t")):
        headers = {**signed(body), "traceparent": f"00-{caller_trace}-{caller_span}-01"}
        assert (await post(base_url + URL, body, headers))[0] == 200
        assert (await post(base_url + "/webhooks/whatsapp/nope", body, signed(body)))[0] == 404
    accepted, refused = exporter.get_finished_spans()
    assert accepted.name == "POST /webhooks/{provider}/{channel_id}"
    assert accepted.kind is SpanKind.SERVER
    assert accepted.attributes is not None
    assert accepted.attributes["http.response.status_code"] == 200
    assert accepted.parent is not None
    assert format(accepted.parent.span_id, "016x") == caller_span
    assert format(accepted.context.trace_id, "032x") == caller_trace
    [event] = await inbox(redis, keys)
    assert event.traceparent == f"00-{caller_trace}-{accepted.context.span_id:016x}-01"
    assert refused.attributes is not None
    assert refused.attributes["http.response.status_code"] == 404
    assert refused.parent is None


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "error", "detail"),
    [
        (
            URL,
            webhook("wamid.forged"),
            signed(webhook("wamid.forged"), secret="not-the-secret"),
            401,
            "signature_invalid",
            "X-Hub-Signature-256",
        ),
        (
            "/webhooks/whatsapp/nope",
            webhook("wamid.x"),
            signed(webhook("wamid.x")),
            404,
            "unknown_channel",
            "no whatsapp channel 'nope' is configured here",
        ),
        (
            "/webhooks/telegram/wa-main",
            webhook("wamid.x"),
            signed(webhook("wamid.x")),
            404,
            "unknown_channel",
            "no telegram channel 'wa-main'",
        ),
        (
            URL,
            b"hello",
            {**signed(b"hello"), "Content-Type": "text/plain"},
            415,
            "unsupported_media_type",
            "Content-Type 'text/plain' is not accepted here; send application/json",
        ),
        (
            URL,
            b"x" * 70_000,
            signed(b"x" * 70_000),
            413,
            "body_too_large",
            "larger than this channel's limit of 65536 bytes",
        ),
        (URL, b"{not json", signed(b"{not json"), 400, "invalid_payload", ""),
        (
            URL,
            LONG_SENDER,
            signed(LONG_SENDER),
            400,
            "invalid_payload",
            "does not fit the event contract: conversation_id",
        ),
    ],
)
async def test_bad_requests_are_refused_with_a_reason_and_publish_nothing(
    base_url: str,
    redis: aioredis.Redis,
    keys: KeySpace,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    error: str,
    detail: str,
) -> None:
    got_status, answer = await post(base_url + path, body, headers)
    assert got_status == status
    assert answer["error"] == error
    assert detail in answer["detail"]
    assert await inbox(redis, keys) == []
    assert [key async for key in redis.scan_iter(match=f"{keys.namespace}:inbox*")] == []


async def test_a_channel_over_its_rate_limit_gets_429_with_retry_after(
    redis_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    async for base_url in serve(redis_url, redis, keys, config(rate_limit="2/minute")):
        codes = []
        for n in range(3):
            body = webhook(f"wamid.rl{n}")
            async with (
                ClientSession() as http,
                http.post(base_url + URL, data=body, headers=signed(body)) as response,
            ):
                codes.append(response.status)
                retry_after = response.headers.get("Retry-After")
        assert codes == [200, 200, 429]
        assert retry_after is not None
        assert 1 <= int(retry_after) <= 60
    assert len(await inbox(redis, keys)) == 2


async def test_concurrent_webhooks_near_the_limit_fill_it_exactly(
    redis_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    async for base_url in serve(redis_url, redis, keys, config(rate_limit="3/minute")):
        async with ClientSession() as http:

            async def send(n: int, url: str = base_url + URL) -> int:
                body = webhook(f"wamid.burst{n}")
                async with http.post(url, data=body, headers=signed(body)) as answer:
                    return answer.status

            codes = await asyncio.gather(*(send(n) for n in range(8)))
        assert sorted(codes) == [200] * 3 + [429] * 5
    events = await inbox(redis, keys)
    assert len(events) == 3
    assert sorted(event.payload.seq for event in events) == [1, 2, 3]


async def test_a_body_arriving_in_pieces_is_read_whole(
    base_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    body = webhook("wamid.slow", text="a long message " * 100)
    headers = {**signed(body), "Content-Length": str(len(body))}
    request = f"POST {URL} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
    request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    url = URL_OF(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(request.encode() + body[:700])
        await writer.drain()
        await asyncio.sleep(0.1)  # the handler runs with part of the body buffered
        writer.write(body[700:])
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status_line.split()[1] == b"200", status_line
    [event] = await inbox(redis, keys)
    assert event.payload.provider_message_id == "wamid.slow"


async def test_redis_unreachable_answers_503_so_the_provider_retries(
    redis: aioredis.Redis, keys: KeySpace, log_lines: io.StringIO
) -> None:
    dead = aioredis.Redis(port=1, socket_connect_timeout=0.2)
    async for base_url in serve("redis://127.0.0.1:1/0", dead, keys, config()):
        body = webhook("wamid.down")
        status, answer = await post(base_url + URL, body, signed(body))
        assert status == 503
        assert answer["error"] == "unavailable"
        # Redis's error text is for our logs, not for the provider.
        assert answer["detail"] == "the webhook could not be stored; retry in 5 s"
    await dead.aclose()
    [line] = [
        json.loads(line)
        for line in log_lines.getvalue().splitlines()
        if json.loads(line)["event"] == "webhook not stored"
    ]
    assert line["channel"] == "wa-main"
    assert "ConnectionError" in line["error"]


@pytest.mark.parametrize(
    ("query", "status", "answer"),
    [
        (
            "hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444",
            200,
            "1158201444",
        ),
        (
            "hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444",
            403,
            "hub.verify_token",
        ),
        ("hub.mode=subscribe&hub.challenge=1158201444", 400, "hub.verify_token"),
    ],
)
async def test_metas_subscription_handshake(
    base_url: str, query: str, status: int, answer: str
) -> None:
    async with ClientSession() as http, http.get(f"{base_url}{URL}?{query}") as response:
        assert response.status == status
        assert answer in await response.text()
