"""One consumer process of the bus benchmark: ``python -m bench._child KIND [options]``.

The parent speaks to it over stdin/stdout: the child sets everything up, prints ``ready``,
starts consuming when it reads ``go``, and on ``stop`` (or end of input) prints
``cpu_s <seconds>``, the CPU time it spent since ``go``, then shuts down cleanly. Logs go to
stderr. With ``--profile PATH`` the consuming phase runs under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from atende.composition import build_runners
from events.catalog import CATALOG
from events.streams import INBOX_MESSAGE_RECEIVED
from libs.keys import KeySpace
from libs.observability.logging import configure_logging
from libs.observability.tracing import configure_tracing
from libs.redis_client import make_redis
from libs.resources import Resources
from libs.settings import Settings
from libs.streams import Consumer, Publisher, Received
from libs.streams.worker import Worker

GROUP = "bench-bus"
BATCH = 100
BLOCK_MS = 1_000
ReadResponse = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None


class BenchConsumer(Protocol):
    """A contender: set up while the clock is off, then consume until stopped."""

    async def prepare(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _DiscardingExporter(SpanExporter):
    """Receives the batches an OTLP exporter would send, and drops them."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class AtendeConsumer:
    """An ``atende worker`` process reduced to one consumer with a no-op handler.

    Settings are the defaults pointed at the bench's Redis and namespace; logging, tracing
    and runners are set up by the same functions the worker command uses.
    """

    def __init__(self, url: str, namespace: str, partitions: int, spans: bool = False) -> None:
        self.settings = Settings(redis_url=url, namespace=namespace, stream_partitions=partitions)
        self.spans = spans
        self._redis: aioredis.Redis | None = None
        self._worker: Worker | None = None

    async def prepare(self) -> None:
        settings = self.settings
        configure_logging(settings.log_level, settings.log_format)
        configure_tracing(settings.otel_service_name, settings.otel_exporter_otlp_endpoint)
        assert settings.redis_url is not None
        redis = self._redis = make_redis(settings.redis_url, block_ms=settings.block_ms)
        await redis.ping()
        keys = KeySpace(settings.namespace)
        publisher = Publisher(redis, keys, partitions=settings.stream_partitions)
        resources = Resources(settings, redis, keys, CATALOG, publisher)

        async def handle(_received: Received) -> None:
            return None

        consumer = Consumer(
            name=GROUP,
            streams=(INBOX_MESSAGE_RECEIVED,),
            handler_factory=lambda _resources: handle,
        )
        self._worker = Worker(build_runners([consumer], resources, self._tracer()))

    def _tracer(self) -> trace.Tracer | None:
        """With ``spans``: what an OTLP export costs here, minus the network (spans discarded)."""
        if not self.spans:
            return None
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(_DiscardingExporter()))
        return provider.get_tracer("atende.streams")

    async def start(self) -> None:
        assert self._worker is not None
        await self._worker.start()

    async def stop(self) -> None:
        assert self._worker is not None
        assert self._redis is not None
        await self._worker.stop()
        await self._redis.aclose()


class FastStreamConsumer:
    """FastStream's Redis broker on one stream in consumer-group mode, no-op handler."""

    def __init__(self, url: str, key: str) -> None:
        from faststream.redis import RedisBroker, StreamSub

        # logger=None is FastStream's documented way to turn its logging off.
        self._broker = RedisBroker(url, logger=None)
        sub = StreamSub(key, group=GROUP, consumer="faststream-1", max_records=BATCH)

        # The body arrives JSON-decoded by FastStream's default decoder; it is not validated
        # against a model, which would only slow FastStream down.
        @self._broker.subscriber(stream=sub)
        async def handle(body: Any) -> None:
            return None

    async def prepare(self) -> None:
        await self._broker.connect()

    async def start(self) -> None:
        await self._broker.start()

    async def stop(self) -> None:
        await self._broker.stop()


class RawConsumer:
    """The ceiling: XREADGROUP COUNT 100, then XACK of the batch, nothing decoded."""

    def __init__(self, url: str, key: str) -> None:
        self._redis = aioredis.Redis.from_url(url)
        self._key = key
        self._loop: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        await self._redis.ping()

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._consume(), name="raw-consumer")

    async def _consume(self) -> None:
        streams: dict[Any, Any] = {self._key: ">"}
        while True:
            response: ReadResponse = await self._redis.xreadgroup(  # type: ignore[assignment]
                GROUP, "raw-1", streams, count=BATCH, block=BLOCK_MS
            )
            for key, entries in response or ():
                await self._redis.xack(key, GROUP, *(entry_id for entry_id, _ in entries))

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        await self._redis.aclose()


def _contender(args: argparse.Namespace) -> BenchConsumer:
    if args.kind == "atende":
        return AtendeConsumer(args.url, args.namespace, args.partitions, args.spans)
    if args.kind == "faststream":
        return FastStreamConsumer(args.url, args.key)
    return RawConsumer(args.url, args.key)


async def _next_line() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


async def main(args: argparse.Namespace) -> None:
    """Prepare, say ready, consume between ``go`` and ``stop``, shut down."""
    contender = _contender(args)
    await contender.prepare()
    print("ready", flush=True)
    if await _next_line() != "go":
        await contender.stop()
        return
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    cpu_started = time.process_time()
    await contender.start()
    await _next_line()  # "stop", or "" when the parent went away
    print(f"cpu_s {time.process_time() - cpu_started:.6f}", flush=True)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    await contender.stop()


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options of a benchmark consumer."""
    parser = argparse.ArgumentParser(prog="python -m bench._child")
    parser.add_argument("kind", choices=["atende", "faststream", "raw"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--namespace", help="atende: key namespace")
    parser.add_argument("--partitions", type=int, default=1, help="atende: stream partitions")
    parser.add_argument("--spans", action="store_true", help="atende: record and export spans")
    parser.add_argument("--key", help="faststream, raw: the stream key")
    parser.add_argument("--profile", help="write cProfile stats of the consuming phase here")
    args = parser.parse_args(argv)
    if args.kind == "atende" and not args.namespace:
        parser.error("atende needs --namespace")
    if args.kind != "atende" and not args.key:
        parser.error(f"{args.kind} needs --key")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
