"""One trace across hops, metrics on /metrics, and readiness that names what is wrong."""

from __future__ import annotations

import io
import json

import aiohttp
import redis.asyncio as aioredis
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from events.envelope import Envelope
from libs.health import health_app, serve
from libs.keys import KeySpace
from libs.streams import Received
from tests.streams_support import (
    ProbeEcho,
    eventually,
    fast_settings,
    make_publisher,
    make_runner,
    probe,
)


async def test_one_trace_id_across_two_hops(redis: aioredis.Redis, keys: KeySpace) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    settings = fast_settings(stream_partitions=2)
    publisher = make_publisher(redis, keys, settings)
    echoed: list[Envelope[ProbeEcho]] = []

    async def first_hop(received: Received) -> None:
        echo = Envelope.derived(
            ProbeEcho(n=received.envelope.payload.n), cause=received.envelope, role="test-echo"
        )
        await publisher.publish(echo)

    async def second_hop(received: Received) -> None:
        echoed.append(received.envelope)

    runners = [
        make_runner(redis, keys, first_hop, settings, name="first", tracer=tracer),
        make_runner(
            redis, keys, second_hop, settings, name="second", stream=ProbeEcho.stream, tracer=tracer
        ),
    ]
    for runner in runners:
        await runner.start()
    try:
        with tracer.start_as_current_span("webhook", kind=trace.SpanKind.SERVER) as root:
            await publisher.publish(probe(1))

        async def arrived() -> bool:
            return len(echoed) == 1

        await eventually(arrived, what="the event after two hops")
    finally:
        for runner in runners:
            await runner.stop()

    spans = {span.name: span for span in exporter.get_finished_spans()}
    webhook, first, second = (
        spans["webhook"],
        spans["test.probe process"],
        spans["test.probe.echo process"],
    )
    trace_id = root.get_span_context().trace_id
    assert {_trace_id(s) for s in (webhook, first, second)} == {trace_id}
    assert first.parent is not None
    assert first.parent.span_id == _span_id(webhook)
    assert second.parent is not None
    assert second.parent.span_id == _span_id(first)
    assert echoed[0].correlation_id == echoed[0].causation_id, "the chain keeps its first id"


def _trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    trace_id: int = span.context.trace_id
    return trace_id


def _span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    span_id: int = span.context.span_id
    return span_id


async def test_metrics_and_readiness_are_served(redis: aioredis.Redis, keys: KeySpace) -> None:
    settings = fast_settings(stream_partitions=1)

    async def handle(_received: Received) -> None:
        return None

    runner = make_runner(redis, keys, handle, settings, name="metered")
    await runner.start()
    await make_publisher(redis, keys, settings).publish_many([probe(n) for n in range(3)])

    async def redis_ok() -> None:
        await redis.ping()

    async def broken() -> None:
        raise ConnectionError("postgres at db:5432 refused the connection")

    try:
        async with (
            serve(health_app({"redis": redis_ok}), "127.0.0.1", 0) as port,
            serve(health_app({"redis": redis_ok, "postgres": broken}), "127.0.0.1", 0) as bad,
            aiohttp.ClientSession() as http,
        ):

            async def consumed() -> bool:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    text = await response.text()
                return 'events_consumed_total{group="metered",outcome="ok"' in text and (
                    text.count('group="metered",outcome="ok",stream="test.probe"} 3.0') == 1
                )

            await eventually(consumed, what="consumed events counted on /metrics")
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert response.content_type == "text/plain"
                metrics = await response.text()
            for name in (
                "events_published_total",
                "events_processing_duration_seconds_bucket",
                "stream_lag",
                "stream_pending",
            ):
                assert name in metrics, name
            async with http.get(f"http://127.0.0.1:{port}/health/ready") as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok", "checks": {"redis": "ok"}}
            async with http.get(f"http://127.0.0.1:{bad}/health/ready") as response:
                assert response.status == 503
                body = await response.json()
                assert body["checks"]["postgres"] == (
                    "ConnectionError: postgres at db:5432 refused the connection"
                )
            async with http.get(f"http://127.0.0.1:{bad}/health/live") as response:
                assert response.status == 200
    finally:
        await runner.stop()


async def test_without_an_exporter_logs_and_published_events_keep_the_trace(
    redis: aioredis.Redis,
    keys: KeySpace,
    log_lines: io.StringIO,
) -> None:
    lines_out = log_lines
    settings = fast_settings(stream_partitions=1)
    publisher = make_publisher(redis, keys, settings)
    echoes: list[Envelope[ProbeEcho]] = []

    async def handle(received: Received) -> None:
        structlog.get_logger("test").info("handling probe")
        echo = Envelope.derived(ProbeEcho(n=1), cause=received.envelope, role="test-echo")
        await publisher.publish(echo)

    async def collect(received: Received) -> None:
        echoes.append(received.envelope)

    runners = [
        make_runner(redis, keys, handle, settings, name="plain"),
        make_runner(redis, keys, collect, settings, name="echoes", stream=ProbeEcho.stream),
    ]
    for runner in runners:
        await runner.start()
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("webhook") as root:
        original = probe(1)
        await publisher.publish(original)
    try:

        async def echoed() -> bool:
            return len(echoes) == 1

        await eventually(echoed, what="the echo")
    finally:
        for runner in runners:
            await runner.stop()
    trace_id = format(root.get_span_context().trace_id, "032x")
    lines = [json.loads(line) for line in lines_out.getvalue().splitlines() if line]
    [handling] = [line for line in lines if line["event"] == "handling probe"]
    assert handling["trace_id"] == trace_id
    assert handling["tenant_id"] == "t1"
    assert handling["conversation_id"] == "c1"
    assert handling["event_type"] == "test.probe"
    assert echoes[0].traceparent is not None
    assert echoes[0].traceparent[3:35] == trace_id


def test_phone_numbers_are_masked_in_log_lines_but_ids_are_not(log_lines: io.StringIO) -> None:
    stream = log_lines
    event_id = "0193a4b2-1234-7000-8000-123456789012"
    structlog.get_logger("t").info(
        "webhook accepted",
        conversation_ids=["wa-main:5511987654321"],
        contact="+5511987654321",
        note="call me at 11987654321",
        event_id=event_id,
        entry_id="1717430401123-0",
    )
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["conversation_ids"] == ["wa-main:55*********21"]
    assert line["contact"] == "+55*********21"
    assert line["note"] == "call me at 11*******21"
    assert line["event_id"] == event_id
    assert line["entry_id"] == "1717430401123-0"
    assert "987654" not in stream.getvalue()


def test_phone_numbers_in_tracebacks_and_nested_values_are_masked(log_lines: io.StringIO) -> None:
    stream = log_lines
    try:
        raise KeyError("conversation wa-main:5511999998888 is unknown")
    except KeyError:
        structlog.get_logger("t").exception("lookup failed", contact={"phone": "+5511999998888"})
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["contact"] == {"phone": "+55*********88"}
    assert "55*********88" in line["exception"]
    assert "999998888" not in stream.getvalue()
