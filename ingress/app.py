"""The ingress aiohttp application: webhook routes, health and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter

from aiohttp import web

from ingress.config import WHATSAPP_MAX_BODY_BYTES
from ingress.webhooks import WebhookEndpoint
from libs.health import ReadinessCheck, add_health_routes
from libs.observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        HTTP_REQUESTS.labels(route, request.method, str(status)).inc()
        HTTP_REQUEST_DURATION.labels(route, request.method).observe(perf_counter() - started)
    return response


def ingress_app(
    endpoint: WebhookEndpoint,
    checks: Mapping[str, ReadinessCheck],
    *,
    handshakes: Mapping[str, Handler] | None = None,
) -> web.Application:
    """The webhook routes of every channel, plus ``/health*`` and ``/metrics``.

    ``handshakes`` maps a provider to its GET verification handler (Meta's ``hub.challenge``).
    """
    # The largest body any channel may accept; each channel checks its own, lower, limit.
    app = web.Application(client_max_size=WHATSAPP_MAX_BODY_BYTES + 1, middlewares=[http_metrics])
    app.router.add_post("/webhooks/{provider}/{channel_id}", endpoint.handle)
    for provider, handshake in (handshakes or {}).items():
        app.router.add_get(f"/webhooks/{provider}/{{channel_id}}", handshake)
    add_health_routes(app, checks)
    return app
