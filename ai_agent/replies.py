"""The events the agent publishes: the turn's reply (or fallback) and its tool calls.

Each is derived from the event that caused it (``Envelope.derived``), so handling a
redelivered cause again republishes the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ai_agent.llm import ToolCall, Usage
from ai_agent.transcript import TurnRun
from events.envelope import Envelope
from events.types.agent import AgentResponseGenerated, TokenUsage
from events.types.memory import Fact, MemoryUpdateRequested
from events.types.reply_parts import ReplyText
from events.types.tools import ToolCallRequested

AGENT_ROLE = "ai-agent"
"""The producer role in the ids of the events the agent derives."""


def reply_id_of(run: TurnRun) -> str:
    """The idempotency key of the turn's one reply: delivery sends it at most once."""
    return f"{run.turn_id}:{run.token}:reply"


def reply_event(
    cause: Envelope[Any],
    run: TurnRun,
    text: str,
    *,
    model: str | None,
    usage: Usage | None,
    handoff_reason: str | None = None,
) -> Envelope[AgentResponseGenerated]:
    """The turn's reply with ``text``; with ``handoff_reason``, a human takes over after it."""
    payload = AgentResponseGenerated(
        turn_id=run.turn_id,
        fencing_token=run.token,
        reply_id=reply_id_of(run),
        channel_id=run.channel_id,
        parts=(ReplyText(text=text),),
        handoff=handoff_reason is not None,
        handoff_reason=handoff_reason[:1_024] if handoff_reason is not None else None,
        agent_profile=run.profile,
        model=model,
        usage=(
            TokenUsage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
            if usage is not None
            else None
        ),
    )
    return Envelope.derived(payload, cause=cause, role=AGENT_ROLE, key="reply")


def facts_event(
    cause: Envelope[Any], run: TurnRun, facts: tuple[Fact, ...]
) -> Envelope[MemoryUpdateRequested]:
    """The facts the model stated in the run's current step, to remember; fenced by the
    turn's token, so a superseded turn's facts are dropped by the memory manager."""
    payload = MemoryUpdateRequested(turn_id=run.turn_id, fencing_token=run.token, facts=facts)
    return Envelope.derived(payload, cause=cause, role=AGENT_ROLE, key=f"facts:{run.step}")


def tool_request_events(
    cause: Envelope[Any], run: TurnRun, tool_names: Mapping[str, str]
) -> list[Envelope[ToolCallRequested]]:
    """One ``tools.call.requested`` per call ``run`` waits for, keyed by the call's id.

    ``tool_names`` maps the model's function names to tool names (every call awaited is a
    registered tool's); the calls were checked (``call_problem``) before the run was stored.
    """
    return [
        Envelope.derived(
            ToolCallRequested(
                turn_id=run.turn_id,
                fencing_token=run.token,
                tool_call_id=call.id,
                tool=tool_names[call.name],
                arguments=call.arguments or {},
                agent_profile=run.profile,
            ),
            cause=cause,
            role=AGENT_ROLE,
            key=call.id,
        )
        for call in run.waiting_for
    ]


def call_problem(call: ToolCall) -> str | None:
    """Why ``call`` cannot be answered at all (its arguments or its id), or None when it can.

    A call of a tool the profile may not use is not such a problem: the gateway refuses it
    and the model reads the refusal (``ai_agent.tool_routing``).
    """
    if call.arguments_error is not None:
        return call.arguments_error
    if not 1 <= len(call.id) <= 128 or not call.id.isascii() or not call.id.isprintable():
        return f"the model gave {call.name} the call id {call.id!r}, which is not usable"
    if " " in call.id:
        return f"the model gave {call.name} the call id {call.id!r}, which holds a space"
    return None
