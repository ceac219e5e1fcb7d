"""The ingress aiohttp application: webhook routes, health and metrics."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from channels.base_config import WHATSAPP_MAX_BODY_BYTES
from ingress.openapi import OPENAPI_PATH, serve_openapi
from ingress.webhooks import WebhookEndpoint
from libs.health import ReadinessCheck, add_health_routes
from libs.observability.http_tracing import server_spans
from libs.observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@functools.lru_cache(maxsize=512)
def _request_counter(route: str, method: str, status: int) -> Counter:
    # Resolving a labelled child takes a lock and a dict lookup per call; routes, methods and
    # statuses form a small set, so each child is resolved once (bounded against odd methods).
    return HTTP_REQUESTS.labels(route, method, str(status))


@functools.lru_cache(maxsize=512)
def _request_timer(route: str, method: str) -> Histogram:
    return HTTP_REQUEST_DURATION.labels(route, method)


@web.middleware
async def http_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request and time it, labelled by route pattern (never by raw path)."""
    started = perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "(unmatched)"
    status = 500
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        status = exc.status
        raise
    else:
        status = response.status
    finally:
        _request_counter(route, request.method, status).inc()
        _request_timer(route, request.method).observe(perf_counter() - started)
    return response


def ingress_app(
    endpoint: WebhookEndpoint,
    checks: Mapping[str, ReadinessCheck],
    *,
    handshakes: Mapping[str, Handler] | None = None,
    tracer: trace.Tracer | None = None,
) -> web.Application:
    """The webhook routes of every channel, ``/health*``, ``/metrics`` and ``/openapi.json``.

    ``handshakes`` maps a provider to its GET verification handler (Meta's ``hub.challenge``).
    With a ``tracer`` (spans are exported), every request gets a server span.
    """
    middlewares: list[Middleware] = (
        [http_metrics] if tracer is None else [server_spans(tracer), http_metrics]
    )
    # The largest body any channel may accept; each channel checks its own, lower, limit.
    app = web.Application(client_max_size=WHATSAPP_MAX_BODY_BYTES + 1, middlewares=middlewares)
    app.router.add_post("/webhooks/{provider}/{channel_id}", endpoint.handle)
    for provider, handshake in (handshakes or {}).items():
        app.router.add_get(f"/webhooks/{provider}/{{channel_id}}", handshake)
    add_health_routes(app, checks)
    app.router.add_get(OPENAPI_PATH, serve_openapi)
    return app
