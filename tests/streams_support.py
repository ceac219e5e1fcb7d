"""A test-only event type and helpers to drive the stream runtime against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from opentelemetry import trace

from events.envelope import Envelope, EventPayload
from events.registry import EventRegistry
from libs.keys import KeySpace
from libs.settings import Settings
from libs.streams import Consumer, ConsumerRunner, Handler, Publisher, RunnerConfig

PROBE_STREAM = "test.probe"


class Probe(EventPayload):
    """A numbered test event."""

    event_type = "test.probe"
    event_version = 1
    stream = PROBE_STREAM

    n: int


class ProbeEcho(EventPayload):
    """What a first consumer publishes after handling a probe (a second hop)."""

    event_type = "test.probe.echo"
    event_version = 1
    stream = "test.probe.echo"

    n: int


REGISTRY = EventRegistry([Probe, ProbeEcho])


def probe(n: int, conversation: str | None = None) -> Envelope[Probe]:
    """An envelope for probe ``n``; conversations spread probes over partitions."""
    return Envelope.new(Probe(n=n), tenant_id="t1", conversation_id=conversation or f"c{n}")


def fast_settings(**overrides: object) -> Settings:
    """Settings with short timers so failure paths run in milliseconds."""
    values: dict[str, object] = {
        "stream_partitions": 4,
        "block_ms": 100,
        "claim_idle_ms": 1_000,
        "retry_base_ms": 10,
        "retry_max_ms": 50,
        "max_deliveries": 3,
        "shutdown_grace_s": 5,
        "stream_stats_interval_s": 0.2,
    }
    values.update(overrides)
    return Settings.model_validate(values)


def make_runner(
    redis: aioredis.Redis,
    keys: KeySpace,
    handler: Handler,
    settings: Settings,
    *,
    name: str = "probe",
    consumer_name: str | None = None,
    stream: str = PROBE_STREAM,
    tracer: trace.Tracer | None = None,
    **consumer_options: object,
) -> ConsumerRunner:
    """A runner of a consumer of the probe stream (or ``stream``)."""
    consumer = Consumer(
        name=name,
        streams=(stream,),
        handler_factory=lambda _resources: handler,
        **consumer_options,  # type: ignore[arg-type]
    )
    config = RunnerConfig.for_consumer(consumer, settings, consumer_name)
    return ConsumerRunner(
        consumer, handler, redis=redis, keys=keys, registry=REGISTRY, config=config, tracer=tracer
    )


def make_publisher(redis: aioredis.Redis, keys: KeySpace, settings: Settings) -> Publisher:
    """A publisher with the settings' partitions."""
    return Publisher(redis, keys, partitions=settings.stream_partitions)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


Entry = tuple[bytes, dict[bytes, bytes]]


async def entries(redis: aioredis.Redis, key: str, count: int | None = None) -> list[Entry]:
    """Every entry of stream ``key`` (oldest first), typed."""
    found = await redis.xrange(key, count=count)
    return [(entry_id, fields) for entry_id, fields in found or []]  # type: ignore[misc]


async def group_pending(redis: aioredis.Redis, keys: KeySpace, group: str, partitions: int) -> int:
    """Entries delivered to ``group`` and not acknowledged, over all partitions."""
    total = 0
    for partition in range(partitions):
        key = keys.stream(PROBE_STREAM, partition)
        if await redis.exists(key):
            summary = await redis.xpending(key, group)
            total += int(summary["pending"])
    return total
