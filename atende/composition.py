"""Wiring settings, clients and consumers into a running process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import asyncpg
import redis.asyncio as aioredis
import structlog
from opentelemetry import trace

from atende.config import AtendeConfig
from atende.servers import ServerUrls
from channels.config import ChannelsConfig
from channels.directory import record_tenants_and_channels
from delivery.senders import sending_problems
from events.catalog import CATALOG
from ingress.wiring import build_ingress_app
from libs.health import ReadinessCheck, health_app, serve
from libs.heap import freeze_startup_heap
from libs.keys import KeySpace
from libs.migrations.runner import apply_migrations
from libs.partition_layout import check_partition_count
from libs.postgres import open_pool, ping
from libs.redis_client import make_redis
from libs.resources import Resources
from libs.settings import Settings
from libs.streams import Consumer, ConsumerRunner, Publisher, RunnerConfig
from libs.streams.groups import groups_present
from libs.streams.worker import Worker, stop_on_signals

_log = structlog.get_logger("atende")


@asynccontextmanager
async def open_resources(
    settings: Settings, urls: ServerUrls, config: Mapping[str, object] | None = None
) -> AsyncIterator[Resources]:
    """Open the Redis client and the Postgres pool (migrated first); close both on exit.

    ``config`` holds the config file's sections by key, handed to the consumers; its tenants
    and channels are recorded in Postgres once migrated. Raises ``PartitionCountChanged`` when
    Redis holds data written with another partition count.
    """
    sections = dict(config or {})
    redis = make_redis(urls.redis_url, block_ms=settings.block_ms)
    keys = KeySpace(settings.namespace)
    publisher = Publisher(redis, keys, partitions=settings.stream_partitions)
    try:
        await check_partition_count(redis, keys, settings.stream_partitions)
        if urls.database_url is None:
            yield Resources(settings, redis, keys, CATALOG, publisher, config=sections)
            return
        async with open_pool(
            urls.database_url,
            min_size=settings.pg_pool_min_size,
            max_size=settings.pg_pool_max_size,
        ) as pool:
            applied = await apply_migrations(pool)
            if applied:
                _log.info("migrations applied", versions=applied)
            declared = sections.get("tenants")
            if isinstance(declared, ChannelsConfig):
                await _record_directory(pool, declared)
            yield Resources(settings, redis, keys, CATALOG, publisher, pool, sections)
    finally:
        await redis.aclose()


async def _record_directory(pool: asyncpg.Pool, config: ChannelsConfig) -> None:
    """Write the config file's tenants and channels to Postgres (see ``channels.directory``)."""
    async with pool.acquire() as conn:
        recorded = await record_tenants_and_channels(conn, config)
    if recorded.tenants or recorded.channels or recorded.disabled:
        _log.info(
            "tenants and channels recorded",
            tenants_written=recorded.tenants,
            channels_written=recorded.channels,
            channels_disabled=recorded.disabled,
        )


def build_runners(
    consumers: list[Consumer], resources: Resources, tracer: trace.Tracer | None = None
) -> list[ConsumerRunner]:
    """One runner per consumer, each with its handler built from ``resources``.

    Spans are recorded only when traces are exported somewhere (an OTLP endpoint, or the
    ``tracer`` given); otherwise the runners carry the trace context without building spans.
    """
    if tracer is None and resources.settings.otel_exporter_otlp_endpoint is not None:
        tracer = trace.get_tracer("atende.streams")
    return [
        ConsumerRunner(
            consumer,
            consumer.handler_factory(resources),
            redis=resources.redis,
            keys=resources.keys,
            registry=resources.registry,
            config=RunnerConfig.for_consumer(consumer, resources.settings),
            tracer=tracer,
        )
        for consumer in consumers
    ]


def readiness_checks(
    resources: Resources, runners: list[ConsumerRunner]
) -> dict[str, ReadinessCheck]:
    """Redis answers; Postgres too when the process has a pool; the runners' groups exist.

    Only what the process uses is checked and reported: the ingress, with no pool and no
    runners, is ready when Redis is.
    """

    async def redis_check() -> None:
        await _ping_redis(resources.redis)

    checks: dict[str, ReadinessCheck] = {"redis": redis_check}
    pool = resources.postgres
    if pool is not None:

        async def postgres_check() -> None:
            await ping(pool)

        checks["postgres"] = postgres_check
    if runners:

        async def groups_check() -> None:
            missing: list[str] = []
            for runner in runners:
                keys = [where.key for where in runner.partitions]
                missing.extend(await groups_present(resources.redis, keys, runner.config.group))
            if missing:
                raise LookupError(f"consumer groups missing on {', '.join(missing[:5])}")

        checks["groups"] = groups_check
    return checks


async def run_worker(
    settings: Settings,
    urls: ServerUrls,
    consumers: list[Consumer],
    config: AtendeConfig | None = None,
    *,
    ingress: bool = False,
) -> None:
    """Run ``consumers`` until SIGTERM or Ctrl-C, serving health and metrics on the HTTP port.

    ``config`` (the config file) gives consumers their sections; with ``ingress`` the same
    port also takes the webhooks of its channels.
    """
    if ingress and config is None:
        raise ValueError("the ingress needs the config file's channels")
    stop = asyncio.Event()
    stop_on_signals(stop)
    sections = config.sections() if config is not None else None
    for problem in sending_problems(config) if config is not None else []:
        # Receiving works; replies on this channel will not, until the field is set.
        _log.warning("channel cannot send replies", problem=problem)
    async with open_resources(settings, urls, sections) as resources:
        runners = build_runners(consumers, resources)
        checks = readiness_checks(resources, runners)
        if not ingress or config is None:
            app = health_app(checks)
        else:
            app = build_ingress_app(
                config,
                redis=resources.redis,
                keys=resources.keys,
                partitions=settings.stream_partitions,
                capacity=settings.stream_capacity,
                backlog_full_retry_after_s=settings.backlog_full_retry_after_s,
                checks=checks,
                tracer=_ingress_tracer(settings),
            )
        freeze_startup_heap()
        async with serve(app, settings.http_host, settings.http_port) as port:
            _log.info(
                "atende running",
                consumers=[consumer.name for consumer in consumers],
                health=f"http://127.0.0.1:{port}/health/ready",
            )
            try:
                await Worker(runners).run_until(stop)
            finally:
                await close_handlers(runners)


async def _ping_redis(redis: aioredis.Redis) -> None:
    if not await redis.ping():
        raise ConnectionError("redis did not answer PING")


async def close_handlers(runners: list[ConsumerRunner]) -> None:
    """Let handlers that hold resources (an HTTP session, say) release them: ``aclose()``."""
    for runner in runners:
        close = getattr(runner.handler, "aclose", None)
        if close is None:
            continue
        try:
            await asyncio.wait_for(close(), timeout=10)
        except Exception:  # noqa: BLE001 - one handler failing to close must not stop the rest
            _log.exception("closing a handler failed", consumer=runner.consumer.name)


def _ingress_tracer(settings: Settings) -> trace.Tracer | None:
    """A tracer for server spans when spans are exported; none otherwise (no cost)."""
    if settings.otel_exporter_otlp_endpoint is None:
        return None
    return trace.get_tracer("atende.ingress")
