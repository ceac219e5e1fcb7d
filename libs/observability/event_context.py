"""The event a coroutine is handling, visible to its log lines and to what it publishes.

Without a trace exporter no spans are built; the event's trace context travels here instead,
so log lines still carry its trace id and events published while handling it continue its
trace. With an exporter the span's own context takes precedence (see ``tracing``).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import NamedTuple


class EventContext(NamedTuple):
    """Identity and trace context of the event being handled."""

    event_id: str
    event_type: str
    tenant_id: str
    conversation_id: str
    traceparent: str | None
    tracestate: str | None


_current: ContextVar[EventContext | None] = ContextVar("atende_event", default=None)


def bind_event(context: EventContext) -> Token[EventContext | None]:
    """Make ``context`` current; pass the token to ``unbind_event`` when done."""
    return _current.set(context)


def unbind_event(token: Token[EventContext | None]) -> None:
    """Restore what was current before ``bind_event``."""
    _current.reset(token)


def current_event() -> EventContext | None:
    """The event being handled in this context, if any."""
    return _current.get()
