"""What a chat model call leaves behind: its metrics, and its client span when traced.

Span attributes follow OpenTelemetry's generative-AI conventions (``gen_ai.*``), so a tracing
backend that knows them shows the model, the tokens and the finish reasons.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ai_agent.llm import ChatReply, ChatRequest, LLMCircuitOpen, LLMError, LLMRequestRejected
from libs.observability.metrics import AI_REQUEST_DURATION, AI_REQUESTS, AI_TOKENS_USED

Outcome = Literal["success", "rejected", "unavailable", "circuit_open"]


def outcome_of(error: LLMError) -> Outcome:
    """The ``outcome`` label of a failed call."""
    if isinstance(error, LLMRequestRejected):
        return "rejected"
    if isinstance(error, LLMCircuitOpen):
        return "circuit_open"
    return "unavailable"


@dataclass(frozen=True, slots=True)
class ProviderAddress:
    """Where the calls go, for the span: the provider's kind, host and port."""

    system: str
    host: str
    port: int | None


@contextmanager
def chat_span(
    tracer: trace.Tracer | None, request: ChatRequest, provider: ProviderAddress
) -> Iterator[trace.Span]:
    """A ``CLIENT`` span around one call (retries included); a no-op span without a tracer."""
    if tracer is None:
        yield trace.INVALID_SPAN
        return
    attributes: dict[str, str | int | float] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": provider.system,
        "gen_ai.request.model": request.model,
        "server.address": provider.host,
        "atende.agent.profile": request.profile,
    }
    if provider.port is not None:
        attributes["server.port"] = provider.port
    if request.temperature is not None:
        attributes["gen_ai.request.temperature"] = request.temperature
    if request.max_output_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = request.max_output_tokens
    with tracer.start_as_current_span(
        f"chat {request.model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        # Failures are recorded below as typed errors, with the sentence that names them.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def record_reply(
    span: trace.Span, request: ChatRequest, reply: ChatReply, duration_s: float
) -> None:
    """Count a successful call and its tokens; describe the reply on the span."""
    AI_REQUESTS.labels(request.model, request.profile, "success").inc()
    AI_REQUEST_DURATION.labels(request.model, request.profile).observe(duration_s)
    usage = reply.usage
    AI_TOKENS_USED.labels(request.model, request.profile, "prompt").inc(usage.prompt_tokens)
    AI_TOKENS_USED.labels(request.model, request.profile, "completion").inc(usage.completion_tokens)
    span.set_attributes(
        {
            "gen_ai.response.model": reply.model,
            "gen_ai.response.finish_reasons": [reply.finish_reason],
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
        }
    )


def record_failure(
    span: trace.Span, request: ChatRequest, error: LLMError, duration_s: float
) -> None:
    """Count a failed call by its outcome; mark the span as an error."""
    AI_REQUESTS.labels(request.model, request.profile, outcome_of(error)).inc()
    AI_REQUEST_DURATION.labels(request.model, request.profile).observe(duration_s)
    span.set_attribute("error.type", type(error).__name__)
    span.set_status(Status(StatusCode.ERROR, str(error)))


def record_failed_attempt(span: trace.Span, error: LLMError) -> None:
    """Note on the call's span that one attempt failed (the call may still succeed)."""
    status = getattr(error, "status", None)
    attributes: dict[str, str | int] = {"error.type": type(error).__name__}
    if status is not None:
        attributes["http.response.status_code"] = status
    span.add_event("attempt failed", attributes)
