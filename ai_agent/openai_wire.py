"""Translating between the LLM port's types and OpenAI's Chat Completions wire format.

Also what an SDK failure means for the port: a refused request (never retried), or an
unavailable provider (retried when transient, counted by the breaker when it is the
provider's fault).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import openai
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolUnionParam,
)

from ai_agent.llm import (
    AssistantMessage,
    ChatMessage,
    ChatReply,
    LLMError,
    LLMRequestRejected,
    LLMUnavailable,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
)
from ai_agent.llm_retry import retry_after_s

# Retried like OpenAI's own SDK does: a request timeout, a lock conflict, throttling, and
# anything the server failed at.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})


def wire_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    """The history as the ``messages`` array."""
    return [_wire_message(message) for message in messages]


def _wire_message(message: ChatMessage) -> ChatCompletionMessageParam:
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": message.content}
    if isinstance(message, ToolMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if isinstance(message, AssistantMessage):
        return _wire_assistant(message)
    if not message.images:
        return {"role": "user", "content": message.content}
    parts: list[ChatCompletionContentPartParam] = []
    if message.content:
        parts.append({"type": "text", "text": message.content})
    parts.extend({"type": "image_url", "image_url": {"url": url}} for url in message.images)
    return {"role": "user", "content": parts}


def _wire_assistant(message: AssistantMessage) -> ChatCompletionAssistantMessageParam:
    wire: ChatCompletionAssistantMessageParam = {"role": "assistant"}
    # OpenAI refuses an empty ``tool_calls`` array, and a null content without tool calls.
    if message.tool_calls:
        wire["content"] = message.content
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in message.tool_calls
        ]
    else:
        wire["content"] = message.content or ""
    return wire


def wire_tools(tools: Sequence[dict[str, Any]]) -> list[ChatCompletionToolUnionParam]:
    """The function definitions as the ``tools`` array (the gateway renders them in its shape)."""
    return [cast(ChatCompletionToolUnionParam, tool) for tool in tools]


def reply_of(completion: ChatCompletion, *, model: str, describe: str) -> ChatReply:
    """The port's reply from the first choice of a completion to a request for ``model``."""
    if not completion.choices:
        raise LLMUnavailable(f"{describe} answered without any choice", transient=False)
    # The SDK builds its models without validating them, so what a compatible server sends
    # is checked here, where a surprise becomes a typed error instead of a crash.
    try:
        return _reply_of(completion, model)
    except (AttributeError, TypeError, ValueError) as exc:
        raise LLMUnavailable(
            f"{describe} answered something that is not a chat completion: {exc}",
            transient=False,
        ) from exc


def _reply_of(completion: ChatCompletion, model: str) -> ChatReply:
    choice = completion.choices[0]
    calls = tuple(
        ToolCall(id=call.id, name=call.function.name, arguments_json=call.function.arguments)
        for call in choice.message.tool_calls or ()
        # Custom (free-text) tools are never offered, so only function calls can come back.
        if isinstance(call, ChatCompletionMessageFunctionToolCall)
    )
    usage = completion.usage
    return ChatReply(
        text=choice.message.content or "",
        tool_calls=calls,
        # Some compatible servers send null where OpenAI never does; the SDK passes it through.
        finish_reason=cast("str | None", choice.finish_reason) or "unknown",
        usage=Usage(
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        ),
        model=cast("str | None", completion.model) or model,
    )


def error_of(exc: openai.OpenAIError, *, describe: str, timeout_s: float) -> LLMError:
    """The port's error for an SDK failure."""
    if isinstance(exc, openai.APITimeoutError):
        return LLMUnavailable(f"{describe} did not answer within {timeout_s:.3g}s", transient=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return LLMUnavailable(
            f"{describe} could not be reached: {type(cause).__name__}: {cause}", transient=True
        )
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, describe)
    return LLMUnavailable(f"{describe} answered something unusable: {exc}", transient=False)


def _status_error(exc: openai.APIStatusError, describe: str) -> LLMError:
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = str(body.get("message") or exc.message)
    if status == 429 and exc.code == "insufficient_quota":
        return LLMUnavailable(
            f"{describe} refused the call: the account's quota is used up ({detail}); "
            "add credit or use another OPENAI_API_KEY",
            transient=False,
            status=status,
        )
    if status in _TRANSIENT_STATUSES or status >= 500:
        what = "is rate limiting us" if status == 429 else f"failed with HTTP {status}"
        return LLMUnavailable(
            f"{describe} {what}: {detail}",
            transient=True,
            status=status,
            retry_after_s=retry_after_s(exc.response.headers),
        )
    if status in (401, 403):
        message = (
            f"{describe} refused our credentials (HTTP {status}): {detail}; check OPENAI_API_KEY"
        )
    elif status == 404:
        message = (
            f"{describe} was not found (HTTP 404): {detail}; "
            "check the model name and OPENAI_BASE_URL"
        )
    else:
        kind = f" {exc.type}" if exc.type else ""
        message = (
            f"{describe} rejected the request (HTTP {status}{kind}): {detail}; "
            "sending it again will not help"
        )
    return LLMRequestRejected(message, status=status, code=exc.code, param=exc.param)


def is_provider_failure(error: LLMError) -> bool:
    """Whether the provider itself is failing (a breaker counts these; throttling is not one)."""
    if not isinstance(error, LLMUnavailable):
        return False
    return error.status is None or error.status >= 500 or error.status == 408
