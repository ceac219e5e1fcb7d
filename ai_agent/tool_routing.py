"""Where each tool call of a step goes: the tool gateway, or an answer the agent gives itself.

- A function that names a registered tool goes to the gateway, offered to the profile or not:
  the gateway is the one place permissions are enforced (RBAC per profile), and it audits a
  refusal like any other call. The model gets the refusal as the call's result and can still
  answer the contact; only a model that keeps at it reaches the step cap.
- ``remember_fact``, when the profile may remember facts, is the agent's own: the fact leaves
  as a ``memory.update.requested`` event and the model reads "saved" at once.
- Any other function exists nowhere: the agent answers the call with an error itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from ai_agent.llm import ToolCall, ToolMessage
from events.types.memory import Fact
from events.types.tools import ToolCallCompleted

_log = structlog.get_logger(__name__)

REMEMBER_FACT = "remember_fact"
"""The function name of the agent's memory tool."""


def remember_fact_definition() -> dict[str, Any]:
    """The OpenAI function definition of ``remember_fact``."""
    return {
        "type": "function",
        "function": {
            "name": REMEMBER_FACT,
            "description": (
                "Save a lasting fact the customer stated about themselves (name, preferences, "
                "address, plans...) so later conversations know it. One fact per call; a new "
                "value of a key replaces the old one."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "key": {
                        "type": "string",
                        "description": "Dotted lowercase name, e.g. contact.preferred_language.",
                        "pattern": r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$",
                        "maxLength": 128,
                    },
                    "value": {"type": "string", "maxLength": 4_096},
                },
                "required": ["key", "value"],
                "additionalProperties": False,
            },
        },
    }


@dataclass(frozen=True, slots=True)
class RoutedCalls:
    """A step's calls sorted out: for the gateway, answered here, and facts to remember."""

    to_gateway: tuple[ToolCall, ...]
    answered: tuple[ToolMessage, ...]
    facts: tuple[Fact, ...]


def route_calls(
    calls: Sequence[ToolCall], routes: Mapping[str, str], *, remember_facts: bool
) -> RoutedCalls:
    """Sort ``calls`` (their arguments already parsed): ``routes`` maps every registered
    tool's function name to its tool name."""
    to_gateway: list[ToolCall] = []
    answered: list[ToolMessage] = []
    facts: list[Fact] = []
    for call in calls:
        if call.name in routes:
            to_gateway.append(call)
        elif call.name == REMEMBER_FACT and remember_facts:
            fact, content = _fact_of(call.arguments or {})
            if fact is not None:
                facts.append(fact)
            answered.append(ToolMessage(tool_call_id=call.id, content=content))
        else:
            _log.warning("the model called a function that is not a tool", function=call.name)
            message = f"there is no tool named {call.name!r}; answer without it"
            answered.append(ToolMessage(tool_call_id=call.id, content=_error(message)))
    return RoutedCalls(tuple(to_gateway), tuple(answered), tuple(facts))


def _fact_of(arguments: Mapping[str, Any]) -> tuple[Fact | None, str]:
    """The fact the arguments state and the result the model reads, or None and the error."""
    try:
        fact = Fact.model_validate(
            {"key": arguments.get("key"), "value": arguments.get("value"), "source": "agent"}
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
            for error in exc.errors()
        )
        return None, _error(f"the fact was not saved: {problems}", code="invalid_arguments")
    return fact, json.dumps({"saved": True, "key": fact.key})


def _error(message: str, *, code: str = "not_allowed") -> str:
    return json.dumps({"error": code, "message": message}, ensure_ascii=False)


def tool_result_content(result: ToolCallCompleted) -> str:
    """What the model reads as the result of a call the gateway answered."""
    if result.outcome == "ok":
        return json.dumps(result.result, ensure_ascii=False)
    assert result.error is not None  # the model checks that an error outcome has one
    return json.dumps({"error": result.error.code, "message": result.error.message})
