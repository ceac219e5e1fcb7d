"""What the scripted OpenAI server answers: the steps of a test's script.

A step answers one chat request: ``Text``, ``ToolCalls`` (one or several ``Call`` in
parallel), a ``Failure`` in OpenAI's error shape (``rate_limited``, ``server_error``,
``overloaded``, ``bad_request``, ``unauthorized`` build OpenAI's own), ``Raw`` JSON, a
``Delayed`` step, a ``Hang``, or a function (or coroutine function) of the ``SeenRequest``
that returns a step.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from multidict import CIMultiDict


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens to report in a success's ``usage``."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Text:
    """The model answers ``content``; ``usage`` defaults to a count of words."""

    content: str
    usage: Usage | None = None
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call; ``arguments`` goes out verbatim when it is a string (malformed or not)."""

    name: str
    arguments: str | Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        """The ``arguments`` string the wire carries."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))


class ToolCalls:
    """The model calls tools, several at once when given several (``finish_reason: tool_calls``)."""

    __slots__ = ("calls", "content", "usage")

    def __init__(self, *calls: Call, content: str | None = None, usage: Usage | None = None):
        if not calls:
            raise ValueError("ToolCalls needs at least one Call")
        self.calls = calls
        self.content = content
        self.usage = usage


@dataclass(frozen=True, slots=True)
class Failure:
    """An HTTP error with OpenAI's body: ``{"error": {"message", "type", "param", "code"}}``."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends with this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass(frozen=True, slots=True)
class Raw:
    """Any JSON answer, for what compatible servers send and OpenAI never would."""

    body: Any
    status: int = 200


@dataclass(frozen=True, slots=True)
class Delayed:
    """Wait ``seconds`` before answering ``then`` (to outlast a client's timeout)."""

    seconds: float
    then: Step


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: the client's timeout (or the server's stop) ends the request."""


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A chat completions request as the server received it."""

    body: dict[str, Any]
    headers: CIMultiDict[str]

    @property
    def model(self) -> str:
        """The ``model`` asked for."""
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The history sent, as JSON objects."""
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    def contents(self, role: str) -> list[str]:
        """The text of every message of ``role``, in order."""
        return [str(m.get("content")) for m in self.messages if m.get("role") == role]

    @property
    def tool_names(self) -> list[str]:
        """Names of the functions offered in ``tools``."""
        return [tool["function"]["name"] for tool in self.body.get("tools") or ()]


Step: TypeAlias = (
    "Text | ToolCalls | Failure | Raw | Delayed | Hang | Callable[[SeenRequest], Step]"
    " | Callable[[SeenRequest], Awaitable[Step]]"
)
"""What the server does with one chat request; a function of the request may be async (to
look at Redis or Postgres the moment the request arrives)."""


def rate_limited(retry_after_s: float | None = 1, *, quota: bool = False) -> Failure:
    """OpenAI's 429: a rate limit (with ``retry-after`` when given) or an exhausted quota."""
    headers = {} if retry_after_s is None else {"retry-after": f"{retry_after_s:g}"}
    if quota:
        return Failure(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
            headers=headers,
        )
    return Failure(
        429,
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
        f"Please try again in {retry_after_s or 20:g}s.",
        "requests",
        "rate_limit_exceeded",
        headers=headers,
    )


def server_error() -> Failure:
    """OpenAI's 500."""
    return Failure(
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    )


def overloaded() -> Failure:
    """OpenAI's 503."""
    return Failure(
        503, "The engine is currently overloaded, please try again later.", "server_error"
    )


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> Failure:
    """OpenAI's 400 ``invalid_request_error``."""
    return Failure(400, message, "invalid_request_error", code, param)


def unauthorized() -> Failure:
    """OpenAI's 401 for a wrong key."""
    return Failure(
        401,
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )
