"""``ChatModel`` over any server that speaks OpenAI's Chat Completions: OpenAI, Azure, vLLM,
Ollama, llama.cpp.

A call is a bounded series of attempts (``CompletionRetryPolicy``). Each attempt runs under
the model's shared circuit breaker with its own timeout; only the provider's own failures
(5xx, 408, timeouts, refused connections, unusable answers) leave the breaker's block as
errors, so a refused request or a rate limit never trips it, and an open breaker ends the
call at once, sending nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI, omit
from opentelemetry import trace

from ai_agent.llm import ChatReply, ChatRequest, LLMCircuitOpen, LLMError, LLMUnavailable
from ai_agent.llm_breakers import ModelBreakers, provider_label
from ai_agent.llm_retry import CompletionRetryPolicy
from ai_agent.llm_telemetry import (
    ProviderAddress,
    chat_span,
    record_failed_attempt,
    record_failure,
    record_reply,
)
from ai_agent.openai_wire import error_of, is_provider_failure, reply_of, wire_messages, wire_tools
from libs.breaker import SharedCircuitBreaker
from libs.errors import CircuitOpen
from libs.observability.tracing import outgoing_trace_headers

MaxTokensField = Literal["max_completion_tokens", "max_tokens"]
"""How the output limit is sent: OpenAI's current name, or the older one some servers need."""


class OpenAIChatModel:
    """Calls ``client.chat.completions`` with timeouts, retries and a breaker per model.

    ``timeout_s`` bounds each attempt (and is cut to what is left of the retry policy's total
    time); ``breakers`` gives the shared breaker of each model; ``tracer``, when given, records
    one client span per call. The client's own retries are turned off: the policy's are the
    only ones, each attempt under the breaker.
    """

    def __init__(
        self,
        client: AsyncOpenAI,
        breakers: ModelBreakers,
        *,
        retry: CompletionRetryPolicy | None = None,
        timeout_s: float = 30.0,
        tracer: trace.Tracer | None = None,
        max_tokens_field: MaxTokensField = "max_completion_tokens",
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self._client = client.with_options(max_retries=0)
        self._breakers = breakers
        self._retry = retry if retry is not None else CompletionRetryPolicy()
        self._timeout_s = timeout_s
        self._tracer = tracer
        self._max_tokens_field = max_tokens_field
        base_url = str(client.base_url)
        self._provider_label = provider_label(base_url)
        parts = urlsplit(base_url)
        self._address = ProviderAddress("openai", parts.hostname or "", parts.port)

    async def complete(self, request: ChatRequest) -> ChatReply:
        """The model's reply; ``LLMRequestRejected`` or ``LLMUnavailable`` when there is none."""
        breaker = self._breakers.for_model(request.model)
        describe = f"model '{request.model}' at {self._provider_label}"
        started = time.monotonic()
        with chat_span(self._tracer, request, self._address) as span:

            async def attempt(left_s: float) -> ChatReply:
                timeout_s = min(self._timeout_s, left_s)
                return await self._attempt(request, breaker, describe, timeout_s, span)

            try:
                reply = await self._retry.run(attempt)
            except LLMError as exc:
                record_failure(span, request, exc, time.monotonic() - started)
                raise
            record_reply(span, request, reply, time.monotonic() - started)
        return reply

    async def _attempt(
        self,
        request: ChatRequest,
        breaker: SharedCircuitBreaker,
        describe: str,
        timeout_s: float,
        span: trace.Span,
    ) -> ChatReply:
        try:
            async with breaker.guard():
                outcome = await self._exchange(request, describe, timeout_s)
                if isinstance(outcome, LLMError) and is_provider_failure(outcome):
                    raise outcome
        except CircuitOpen as exc:
            raise LLMCircuitOpen(f"{describe} was not called: {exc}") from exc
        except LLMError as exc:
            record_failed_attempt(span, exc)
            raise
        if isinstance(outcome, LLMError):
            # Raised outside the breaker's block: the provider answered, it is up.
            record_failed_attempt(span, outcome)
            raise outcome
        return outcome

    async def _exchange(
        self, request: ChatRequest, describe: str, timeout_s: float
    ) -> ChatReply | LLMError:
        """One request on the wire: the reply, or the error it ended with (never raised)."""
        limit = request.max_output_tokens if request.max_output_tokens is not None else omit
        by_name = self._max_tokens_field
        try:
            async with asyncio.timeout(timeout_s):
                completion = await self._client.chat.completions.create(
                    model=request.model,
                    messages=wire_messages(request.messages),
                    tools=wire_tools(request.tools) if request.tools else omit,
                    temperature=request.temperature if request.temperature is not None else omit,
                    max_completion_tokens=limit if by_name == "max_completion_tokens" else omit,
                    max_tokens=limit if by_name == "max_tokens" else omit,
                    timeout=timeout_s,
                    extra_headers=outgoing_trace_headers(),
                )
        except TimeoutError:
            return LLMUnavailable(
                f"{describe} did not answer within {timeout_s:.3g}s", transient=True
            )
        except openai.OpenAIError as exc:
            return error_of(exc, describe=describe, timeout_s=timeout_s)
        try:
            return reply_of(completion, model=request.model, describe=describe)
        except LLMError as exc:
            return exc
