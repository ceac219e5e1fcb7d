"""A server span per HTTP request, continuing the caller's trace when it sends ``traceparent``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_propagator = TraceContextTextMapPropagator()


def server_spans(tracer: trace.Tracer) -> Middleware:
    """Middleware: one ``SERVER`` span per request, named by method and route pattern.

    Everything the handler does runs inside it, so events it publishes carry its trace
    context, and a caller's ``traceparent`` makes it a child of the caller's span.
    """

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "(unmatched)"
        parent = _propagator.extract(request.headers)
        with tracer.start_as_current_span(
            f"{request.method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": request.method,
                "http.route": route,
                "url.path": request.path,
            },
        ) as span:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                _record_status(span, exc.status)
                raise
            _record_status(span, response.status)
            return response

    return traced


def _record_status(span: trace.Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
