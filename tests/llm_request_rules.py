"""The checks OpenAI runs on a Chat Completions request before a model sees it.

Each rule answers the error OpenAI answers (400 ``invalid_request_error``, its wording and its
``param``), so a client that builds a history OpenAI would refuse fails here too: an assistant
message whose ``tool_calls`` are not each answered by one ``tool`` message before the next
other message, a ``tool`` message that answers no call, an unknown role, a malformed tool
definition.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_FUNCTION_NAME_MAX = 64


@dataclass(frozen=True, slots=True)
class RequestError:
    """Why OpenAI would refuse a request, in the fields of its error body."""

    message: str
    param: str | None = None
    code: str | None = None


def request_error(body: Mapping[str, Any]) -> RequestError | None:
    """The first rule ``body`` breaks, or None when OpenAI would accept it."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return RequestError("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return RequestError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            "messages",
            "empty_array",
        )
    shape = next(chain(_message_errors(messages), _tool_errors(body.get("tools"))), None)
    # The pairing rule reads roles and call ids, so it runs on a well-formed history only.
    return shape if shape is not None else _pairing_error(messages)


def _message_errors(messages: Sequence[Any]) -> Iterator[RequestError]:
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            yield RequestError(
                f"Invalid type for 'messages[{index}]': expected an object, but got "
                f"{type(message).__name__} instead.",
                f"messages[{index}]",
                "invalid_type",
            )
            continue
        role = message.get("role")
        if role not in ROLES:
            supported = ", ".join(f"'{name}'" for name in ROLES[:-1])
            yield RequestError(
                f"Invalid value: '{role}'. Supported values are: {supported}, and '{ROLES[-1]}'.",
                f"messages[{index}].role",
                "invalid_value",
            )
        elif role == "tool" and not isinstance(message.get("tool_call_id"), str):
            yield _missing(f"messages[{index}].tool_call_id")
        elif role in ("system", "developer", "user", "tool") and "content" not in message:
            yield _missing(f"messages[{index}].content")
        elif role == "assistant":
            yield from _tool_call_errors(index, message.get("tool_calls"))


def _tool_call_errors(index: int, calls: Any) -> Iterator[RequestError]:
    if calls is None:
        return
    if not isinstance(calls, list):
        yield RequestError(
            f"Invalid type for 'messages[{index}].tool_calls': expected an array.",
            f"messages[{index}].tool_calls",
            "invalid_type",
        )
        return
    for position, call in enumerate(calls):
        where = f"messages[{index}].tool_calls[{position}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str):
            yield _missing(f"{where}.id")
        elif not isinstance(function, dict) or not isinstance(function.get("name"), str):
            yield _missing(f"{where}.function.name")
        elif not isinstance(function.get("arguments"), str):
            yield _missing(f"{where}.function.arguments")


def _tool_errors(tools: Any) -> Iterator[RequestError]:
    if tools is None:
        return
    if not isinstance(tools, list):
        yield RequestError("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
        return
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        function = tool.get("function") if isinstance(tool, dict) else None
        if kind != "function":
            yield RequestError(
                f"Invalid value: '{kind}'. Supported values are: 'function' and 'custom'.",
                f"{where}.type",
                "invalid_value",
            )
        elif not isinstance(function, dict):
            yield _missing(f"{where}.function")
        else:
            yield from _function_errors(where, function)


def _function_errors(where: str, function: Mapping[str, Any]) -> Iterator[RequestError]:
    name = function.get("name")
    if not isinstance(name, str):
        yield _missing(f"{where}.function.name")
    elif len(name) > _FUNCTION_NAME_MAX:
        yield RequestError(
            f"Invalid '{where}.function.name': string too long. Expected a string with maximum "
            f"length {_FUNCTION_NAME_MAX}, but got a string with length {len(name)} instead.",
            f"{where}.function.name",
            "string_above_max_length",
        )
    elif not _FUNCTION_NAME.match(name):
        yield RequestError(
            f"Invalid '{where}.function.name': string does not match pattern. Expected a "
            f"string that matches the pattern '{_FUNCTION_NAME.pattern}'.",
            f"{where}.function.name",
            "invalid_value",
        )
    elif "parameters" in function:
        schema = function["parameters"]
        kind = schema.get("type") if isinstance(schema, dict) else type(schema).__name__
        if kind != "object":
            yield RequestError(
                f"Invalid schema for function '{name}': schema must be a JSON Schema of "
                f"'type: \"object\"', got 'type: \"{kind}\"'.",
                f"{where}.function.parameters",
                "invalid_function_parameters",
            )


def _pairing_error(messages: Sequence[Mapping[str, Any]]) -> RequestError | None:
    """Every tool call answered by exactly one tool message, before any other message."""
    awaited: list[str] = []  # calls of the last assistant message not answered yet
    for index, message in enumerate(messages):
        if message["role"] == "tool":
            if message["tool_call_id"] not in awaited:
                return RequestError(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            awaited.remove(message["tool_call_id"])
            continue
        if awaited:
            return _unanswered(awaited, index)
        awaited = [call["id"] for call in message.get("tool_calls") or ()]
    if awaited:
        return _unanswered(awaited, len(messages) - 1)
    return None


def _unanswered(call_ids: Sequence[str], index: int) -> RequestError:
    return RequestError(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(call_ids),
        f"messages.[{index}].role",
    )


def _missing(param: str) -> RequestError:
    return RequestError(
        f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )
