"""``/health``, ``/health/live``, ``/health/ready`` and ``/metrics`` for every process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises (any exception, with a message saying what is wrong) when not ready."""

CHECK_TIMEOUT_S = 2.0

_checks_key = web.AppKey("health_checks", dict[str, ReadinessCheck])
_registry_key = web.AppKey("metrics_registry", CollectorRegistry)
_started_key = web.AppKey("started_at", float)


async def _run_check(check: ReadinessCheck) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await check()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S}s"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return "ok"


async def _readiness(app: web.Application) -> tuple[bool, dict[str, str]]:
    checks = app[_checks_key]
    results = await asyncio.gather(*(_run_check(check) for check in checks.values()))
    report = dict(zip(checks, results, strict=True))
    return all(result == "ok" for result in results), report


async def _live(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    ready, report = await _readiness(request.app)
    return web.json_response(
        {"status": "ok" if ready else "unavailable", "checks": report},
        status=200 if ready else 503,
    )


async def _summary(request: web.Request) -> web.Response:
    ready, report = await _readiness(request.app)
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": report,
        "uptime_s": round(time.monotonic() - request.app[_started_key], 3),
    }
    return web.json_response(body, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    payload = generate_latest(request.app[_registry_key])
    response = web.Response(body=payload)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


def add_health_routes(
    app: web.Application,
    checks: Mapping[str, ReadinessCheck],
    registry: CollectorRegistry = REGISTRY,
) -> None:
    """Mount the health and metrics routes on ``app`` (a worker's or the ingress's)."""
    app[_checks_key] = dict(checks)
    app[_registry_key] = registry
    app[_started_key] = time.monotonic()
    app.router.add_get("/health", _summary)
    app.router.add_get("/health/live", _live)
    app.router.add_get("/health/ready", _ready)
    app.router.add_get("/metrics", _metrics)


def health_app(checks: Mapping[str, ReadinessCheck]) -> web.Application:
    """An application serving only health and metrics."""
    app = web.Application()
    add_health_routes(app, checks)
    return app


@asynccontextmanager
async def serve(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` on ``host:port`` (0 picks a free port); yield the bound port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        addresses = runner.addresses
        yield int(addresses[0][1]) if addresses else port
    finally:
        await runner.cleanup()
