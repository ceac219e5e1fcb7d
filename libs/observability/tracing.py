"""OpenTelemetry set-up and the W3C trace context carried by envelopes."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from events.envelope import Envelope
from libs.observability.event_context import current_event

_propagator = TraceContextTextMapPropagator()


def configure_tracing(service_name: str, otlp_endpoint: str | None) -> TracerProvider | None:
    """Export spans over OTLP/HTTP when an endpoint is set; otherwise install nothing.

    With no endpoint, OpenTelemetry's API stays a no-op: spans nobody receives are not built,
    and the trace context of events travels through ``event_context`` instead.
    """
    if not otlp_endpoint:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return provider


def context_of(envelope: Envelope[Any]) -> Context | None:
    """Return the trace context an envelope carries, or None when it carries none."""
    traceparent = envelope.traceparent
    if traceparent is None:
        return None
    if not traceparent.startswith("00-"):
        # A future version of the header: let the propagator apply the spec's rules.
        carrier = {"traceparent": traceparent}
        if envelope.tracestate:
            carrier["tracestate"] = envelope.tracestate
        return _propagator.extract(carrier)
    # Version 00, already checked against the header's pattern by the envelope model; parsing
    # it here costs a fraction of the propagator's regular expressions on every event.
    span_context = SpanContext(
        trace_id=int(traceparent[3:35], 16),
        span_id=int(traceparent[36:52], 16),
        is_remote=True,
        trace_flags=TraceFlags(int(traceparent[53:55], 16)),
        trace_state=TraceState.from_header([envelope.tracestate]) if envelope.tracestate else None,
    )
    if not span_context.is_valid:
        return None
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def current_trace_headers() -> tuple[str, str | None] | None:
    """Return (traceparent, tracestate) to propagate from here, or None outside any trace.

    The current span's context when there is one, else that of the event being handled.
    """
    if trace.get_current_span().get_span_context().is_valid:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        if (traceparent := carrier.get("traceparent")) is not None:
            return traceparent, carrier.get("tracestate")
    event = current_event()
    if event is None or event.traceparent is None:
        return None
    return event.traceparent, event.tracestate


def outgoing_trace_headers() -> dict[str, str]:
    """The W3C headers an outgoing HTTP request carries to continue the current trace."""
    found = current_trace_headers()
    if found is None:
        return {}
    traceparent, tracestate = found
    return (
        {"traceparent": traceparent, "tracestate": tracestate}
        if tracestate
        else {"traceparent": traceparent}
    )


def trace_id_of(traceparent: str | None) -> str | None:
    """Return the trace id part of a ``traceparent`` header."""
    if traceparent is None or len(traceparent) < 35:
        return None
    return traceparent[3:35]
