"""Running the handler on one entry and turning what happened into an outcome."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import structlog
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode

from events.registry import EventContractError, EventRegistry
from libs.errors import Drop, Reject, RetryLater
from libs.observability.event_context import EventContext, bind_event, unbind_event
from libs.observability.tracing import context_of
from libs.streams.codec import decode_entry, entry_type
from libs.streams.consumer import Consumer, Handler
from libs.streams.partitions import StreamPartition
from libs.streams.received import Received

Outcome = Literal["ok", "retry", "dead_letter", "dropped", "skipped"]

_log = structlog.get_logger("atende.streams")


class UnsupportedVersion(EventContractError):
    """The consumer reads this event type, but not at this version."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the runner must do with an entry after its handler ran."""

    outcome: Outcome
    error: BaseException | None = None
    delay_ms: int | None = None
    received: Received | None = None


_OK = Verdict("ok")
_SKIPPED = Verdict("skipped")


class EntryHandler:
    """Decodes an entry, runs the consumer's handler in a span, and judges the result.

    With ``tracer`` None no span is recorded; the event's trace context is still made current.
    """

    def __init__(
        self,
        consumer: Consumer,
        handler: Handler,
        registry: EventRegistry,
        group: str,
        timeout_s: float | None,
        tracer: trace.Tracer | None,
    ) -> None:
        self._consumer = consumer
        self._handler = handler
        self._registry = registry
        self._group = group
        self._timeout_s = timeout_s
        self._tracer = tracer

    async def run(
        self, where: StreamPartition, entry_id: str, fields: dict[bytes, bytes], attempt: int
    ) -> Verdict:
        """Handle one delivery of ``entry_id``; never raises except on cancellation."""
        kind = entry_type(fields)
        if kind is not None and not self._consumer.reads(kind[0]):
            return _SKIPPED
        try:
            envelope = decode_entry(self._registry, fields, kind)
            if not self._consumer.reads_version(envelope.type, envelope.version):
                raise UnsupportedVersion(
                    f"consumer {self._consumer.name!r} does not read "
                    f"{envelope.type} v{envelope.version}"
                )
        except EventContractError as exc:
            return Verdict("dead_letter", error=exc)
        received = Received(envelope, where.stream, where.partition, entry_id, attempt, self._group)
        token = bind_event(
            EventContext(
                envelope.id,
                envelope.type,
                envelope.tenant_id,
                envelope.conversation_id,
                envelope.traceparent,
                envelope.tracestate,
            )
        )
        try:
            if self._tracer is None:
                return await self._judge(INVALID_SPAN, received)
            return await self._judge_in_span(self._tracer, where, received, attempt)
        finally:
            unbind_event(token)

    async def _judge_in_span(
        self, tracer: trace.Tracer, where: StreamPartition, received: Received, attempt: int
    ) -> Verdict:
        envelope = received.envelope
        attributes: dict[str, str | int] = {
            "messaging.system": "redis",
            "messaging.destination.name": where.stream,
            "messaging.consumer.group.name": self._group,
            "messaging.message.id": envelope.id,
        }
        if attempt > 1:
            attributes["messaging.delivery.attempt"] = attempt
        with tracer.start_as_current_span(
            f"{where.stream} process",
            context=context_of(envelope),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            return await self._judge(span, received)

    async def _judge(self, span: trace.Span, received: Received) -> Verdict:
        try:
            if self._timeout_s is None:
                await self._handler(received)
            else:
                async with asyncio.timeout(self._timeout_s):
                    await self._handler(received)
        except RetryLater as signal:
            return Verdict("retry", error=signal, delay_ms=signal.delay_ms, received=received)
        except Drop as signal:
            _log.info("entry dropped by handler", reason=str(signal))
            return Verdict("dropped", received=received)
        except Reject as exc:
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            return Verdict("dead_letter", error=exc, received=received)
        except Exception as exc:  # noqa: BLE001 - the loop boundary: every failure is judged
            return _failed(span, exc, received)
        except asyncio.CancelledError as exc:
            if _being_cancelled():
                raise
            # Nobody cancelled this delivery: something the handler awaited was cancelled.
            # Raised further, it would end the worker and shrink the pool for good.
            return _failed(span, exc, received)
        return _OK


def _failed(span: trace.Span, exc: BaseException, received: Received) -> Verdict:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    return Verdict("retry", error=exc, received=received)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0
