"""The LLM port: what the agent asks a chat model, what it answers, and how a call fails.

Provider-neutral: ``OpenAIChatModel`` (``ai_agent.openai_chat``) implements it for any server
that speaks OpenAI's Chat Completions (OpenAI, Azure, vLLM, Ollama, llama.cpp); an offline
model or a test double implements the same ``ChatModel`` Protocol. The message types are the
conversation history the agent keeps between calls, so they are pydantic models that
serialize into events and working memory as they are.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from libs.errors import AtendeError

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ToolCall(BaseModel):
    """A function the model asked to run: ``arguments_json`` exactly as it wrote it.

    Models do not always write valid JSON; ``arguments`` is the parsed object, or None with
    ``arguments_error`` saying what is wrong, so the agent can answer the call with the error
    and let the model correct itself instead of failing the turn.
    """

    model_config = _FROZEN

    id: str
    name: str
    arguments_json: str

    @cached_property
    def _parsed(self) -> tuple[dict[str, Any] | None, str | None]:
        try:
            value = json.loads(self.arguments_json)
        except ValueError as exc:
            return None, f"the arguments of {self.name} are not valid JSON: {exc}"
        if not isinstance(value, dict):
            kind = type(value).__name__
            return None, f"the arguments of {self.name} must be a JSON object, not a {kind}"
        return value, None

    @property
    def arguments(self) -> dict[str, Any] | None:
        """The arguments as a JSON object, or None when ``arguments_json`` is not one."""
        return self._parsed[0]

    @property
    def arguments_error(self) -> str | None:
        """Why ``arguments_json`` could not be parsed into an object; None when it was."""
        return self._parsed[1]


class SystemMessage(BaseModel):
    """Instructions: the agent profile's prompt and the context built for the turn."""

    model_config = _FROZEN

    role: Literal["system"] = "system"
    content: str


class UserMessage(BaseModel):
    """What the customer wrote (a voice note arrives here as its transcript).

    ``images`` are ``data:`` URLs of the images the customer sent in this turn, for a
    vision-capable model; they are dropped once the turn is over (``without_images``), so the
    history keeps only a mark of them.
    """

    model_config = _FROZEN

    role: Literal["user"] = "user"
    content: str
    images: tuple[str, ...] = ()

    def without_images(self) -> UserMessage:
        """This message with its images replaced by a mark in the text."""
        if not self.images:
            return self
        mark = "[image]" if len(self.images) == 1 else f"[{len(self.images)} images]"
        return UserMessage(content=f"{self.content} {mark}".strip())


class AssistantMessage(BaseModel):
    """What the model answered earlier: text, tool calls, or both."""

    model_config = _FROZEN

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class ToolMessage(BaseModel):
    """The result of one tool call, answering the call with id ``tool_call_id``.

    Every call of an assistant message needs exactly one, before the next other message, or
    the provider refuses the history.
    """

    model_config = _FROZEN

    role: Literal["tool"] = "tool"
    tool_call_id: str
    content: str


ChatMessage = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]
"""One message of a conversation's history, told apart by its ``role``."""


class ChatRequest(BaseModel):
    """One call to a chat model.

    ``tools`` are OpenAI function definitions as the tool gateway renders them
    (``ToolRegistry.function_definitions``); ``profile`` is the agent profile, a label of the
    metrics only. ``temperature`` and ``max_output_tokens`` are left to the model when None.
    """

    model_config = _FROZEN

    model: str = Field(min_length=1)
    messages: tuple[ChatMessage, ...] = Field(min_length=1)
    tools: tuple[dict[str, Any], ...] = ()
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_output_tokens: int | None = Field(default=None, ge=1)
    profile: str = "default"


class Usage(BaseModel):
    """Tokens the provider counted for one call."""

    model_config = _FROZEN

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)


class ChatReply(BaseModel):
    """The model's answer: text (possibly empty), tool calls (possibly none), or both.

    ``model`` is the one the provider says answered (often a dated snapshot of the one asked
    for); ``finish_reason`` is the provider's: ``stop``, ``tool_calls``, ``length``...
    """

    model_config = _FROZEN

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str
    usage: Usage = Usage()
    model: str

    def as_message(self) -> AssistantMessage:
        """The reply as the assistant message that goes into the history."""
        return AssistantMessage(content=self.text or None, tool_calls=self.tool_calls)


class ChatModel(Protocol):
    """A chat model the agent can call."""

    async def complete(self, request: ChatRequest) -> ChatReply:
        """The model's reply to ``request``.

        Raises ``LLMRequestRejected`` when the provider refuses the request itself, and
        ``LLMUnavailable`` when no answer could be had (after the implementation's retries).
        """
        ...


class LLMError(AtendeError):
    """Root of the failures of a chat model call; the message names the model and the cause."""


class LLMUnavailable(LLMError):
    """No answer could be had: the provider failed, timed out, throttled us past the retries,
    or its circuit breaker is open. The conversation falls back to a message and a handoff.

    ``transient`` says whether the same call may succeed soon (the retries go by it);
    ``status`` is the provider's HTTP status when it answered; ``retry_after_s`` its hint;
    ``attempts`` how many requests the call made.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.retry_after_s = retry_after_s
        self.attempts = 0


class LLMCircuitOpen(LLMUnavailable):
    """The provider's circuit breaker is open after repeated failures: nothing was sent.

    The message says when one trial call will be let through.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class LLMRequestRejected(LLMError):
    """The provider refused the request itself (a 4xx: an invalid history, an unknown model,
    a wrong key); the same request will fail again, so it is never retried.

    ``status``, ``code`` and ``param`` are the provider's.
    """

    def __init__(
        self, message: str, *, status: int, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param
