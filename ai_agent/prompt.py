"""The request of a step: the system message (the profile's instructions and what memory
knows), the history, the run so far, and the tools offered."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ai_agent.llm import ChatRequest, SystemMessage
from ai_agent.tool_routing import remember_fact_definition
from ai_agent.transcript import TranscriptEntry, TurnRun
from memory_manager.context import AgentContext
from tool_gateway.config import AgentProfileConfig

DEFAULT_INSTRUCTIONS = (
    "You are the customer service assistant of this business, talking with a customer on a "
    "messaging app. Be brief, friendly and accurate. Use the tools when they help; never "
    "invent facts, prices or policies. If you cannot help, say so."
)


def chat_request(
    profile: AgentProfileConfig,
    context: AgentContext | None,
    history: Sequence[TranscriptEntry],
    run: TurnRun,
    *,
    model: str,
    tools: Sequence[dict[str, Any]],
) -> ChatRequest:
    """The request of the run's next step; ``tools`` are the gateway tools the profile may
    use (``remember_fact`` is added when the profile may remember facts)."""
    offered = [*tools, remember_fact_definition()] if profile.remember_facts else list(tools)
    return ChatRequest(
        model=model,
        messages=(
            system_message(profile, context),
            *(entry.message for entry in history),
            *(entry.message for entry in run.messages),
        ),
        tools=tuple(offered) if profile.max_tool_steps > 0 else (),
        temperature=profile.temperature,
        profile=profile.profile,
    )


def system_message(profile: AgentProfileConfig, context: AgentContext | None) -> SystemMessage:
    """The profile's prompt, its language and length rules, and the context's memory."""
    parts = [
        profile.system_prompt or DEFAULT_INSTRUCTIONS,
        f"Always answer in the language of the tag {profile.language}, "
        f"in at most {profile.reply_max_chars} characters.",
    ]
    if context is not None:
        parts.extend(_memory(context))
    return SystemMessage(content="\n\n".join(parts))


def _memory(context: AgentContext) -> list[str]:
    sections: list[str] = []
    if context.summary:
        sections.append(f"Summary of the conversation so far:\n{context.summary}")
    if context.workflow is not None:
        workflow = context.workflow
        data = json.dumps(workflow.data, ensure_ascii=False, default=str)
        sections.append(f"Current flow: {workflow.flow}, step {workflow.step}, data {data}")
    if context.facts:
        facts = "\n".join(f"- {fact.key}: {fact.value}" for fact in context.facts)
        sections.append(f"Known about the customer:\n{facts}")
    if context.knowledge:
        passages = "\n".join(f"- {hit.content.strip()}" for hit in context.knowledge)
        sections.append(f"Possibly relevant passages of the knowledge base:\n{passages}")
    return sections
