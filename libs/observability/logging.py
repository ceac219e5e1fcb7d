"""structlog configuration: JSON lines in production, a readable console on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import orjson
import structlog
from opentelemetry import trace

from libs.observability.event_context import current_event
from libs.observability.masking import mask_phone_numbers_processor


def _add_event_fields(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event = current_event()
    if event is not None:
        event_dict.setdefault("event_id", event.event_id)
        event_dict.setdefault("event_type", event.event_type)
        event_dict.setdefault("tenant_id", event.tenant_id)
        event_dict.setdefault("conversation_id", event.conversation_id)
    return event_dict


def _add_trace_ids(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Lines logged inside a span carry its ids, so logs and traces join without extra binding;
    # without spans, the trace of the event being handled.
    if "trace_id" in event_dict:
        return event_dict
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
        return event_dict
    event = current_event()
    if event is not None and event.traceparent is not None:
        event_dict["trace_id"] = event.traceparent[3:35]
    return event_dict


def _json_line(event_dict: object, **options: Any) -> str:
    # orjson renders a line in a fraction of the standard library's time; what it cannot
    # render goes through structlog's fallback (``default``), as with ``json.dumps``.
    return orjson.dumps(
        event_dict, default=options.get("default"), option=orjson.OPT_NON_STR_KEYS
    ).decode()


def configure_logging(
    level: str = "INFO",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library's logging once, at process start.

    Lines go to ``stream`` (default: standard error).
    """
    output = stream or sys.stderr
    numeric_level = logging.getLevelNamesMapping()[level]
    use_console = fmt == "console" or (fmt == "auto" and output.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if use_console
        else structlog.processors.JSONRenderer(serializer=_json_line)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_event_fields,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            # Last before rendering, so it covers what every step added, tracebacks included.
            mask_phone_numbers_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=output),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library; keep their warnings, in the same format.
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                mask_phone_numbers_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric_level, logging.WARNING))
