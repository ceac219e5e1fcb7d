"""The system message of a turn: the profile's instructions and what memory knows."""

from __future__ import annotations

import json

from ai_agent.llm import SystemMessage
from memory_manager.context import AgentContext
from tool_gateway.config import AgentProfileConfig

DEFAULT_INSTRUCTIONS = (
    "You are the customer service assistant of this business, talking with a customer on a "
    "messaging app. Be brief, friendly and accurate. Use the tools when they help; never "
    "invent facts, prices or policies. If you cannot help, say so."
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
