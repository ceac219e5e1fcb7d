"""A rolling summary of the conversation every N answered turns, off the reply path.

After a turn's reply is published (``AIAgent._answer``), ``Summarizer.after_reply`` counts the
conversation's answered turns up to this one (turns not superseded, by fencing token, so a
later turn opened meanwhile does not shift the count); on a multiple of the profile's
``summary_every_turns`` it asks the profile's model to summarize the previous summary and the
transcript, and publishes the summary as ``memory.update.requested`` with the turn's token.
The reply is already out when this starts, so its latency never includes the call, and every
failure here is logged and left: a missed summary is redone N turns later.

A summary is only asked of the OpenAI-compatible model: the offline model quotes passages and
cannot summarize.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from ai_agent.chat_models import ChosenModel
from ai_agent.llm import ChatRequest, LLMError, SystemMessage, UserMessage
from ai_agent.replies import AGENT_ROLE
from ai_agent.transcript import TranscriptEntry, TurnRun
from events.envelope import Envelope
from events.types.memory import MemoryUpdateRequested
from tool_gateway.config import AgentProfileConfig

_log = structlog.get_logger(__name__)

Publish = Callable[[list[Envelope[Any]]], Awaitable[object]]

SUMMARY_MAX_CHARS = 4_000
_TRANSCRIPT_MAX_CHARS = 24_000

_ANSWERED_TURNS = """
SELECT count(*) FROM turns
WHERE tenant_id = $1 AND conversation_id = $2 AND status <> 'superseded' AND fencing_token <= $3
"""

_PREVIOUS_SUMMARY = """
SELECT string_agg(content, E'\\n' ORDER BY chunk_index) FROM memory_chunks
WHERE tenant_id = $1 AND source_kind = 'summary' AND document_key = $2
"""

INSTRUCTIONS = (
    "You keep the memory of a customer service conversation on a messaging app. Write a "
    "short summary of it for the assistant who answers next: who the customer is, what they "
    "asked for, what was done or promised, and what is still open. Keep what the previous "
    "summary says unless the conversation changed it. Plain text, at most "
    f"{SUMMARY_MAX_CHARS} characters, in the language of the conversation."
)


class Summarizer:
    """Summarizes conversations into memory; ``pool`` counts turns and holds the summaries."""

    def __init__(self, pool: asyncpg.Pool, publish: Publish) -> None:
        self._pool = pool
        self._publish = publish

    async def after_reply(
        self,
        cause: Envelope[Any],
        run: TurnRun,
        profile: AgentProfileConfig,
        chosen: ChosenModel,
        history: tuple[TranscriptEntry, ...],
    ) -> None:
        """Summarize when this turn makes a multiple of ``summary_every_turns``; never raises
        for a failure of the model (logged)."""
        every = profile.summary_every_turns
        if every is None or chosen.offline:
            return
        tenant_id, conversation_id = cause.tenant_id, cause.conversation_id
        answered = await self._pool.fetchval(_ANSWERED_TURNS, tenant_id, conversation_id, run.token)
        if not answered or answered % every:
            return
        previous = await self._pool.fetchval(
            _PREVIOUS_SUMMARY, tenant_id, f"summary:{conversation_id}"
        )
        request = ChatRequest(
            model=chosen.name,
            messages=(
                SystemMessage(content=INSTRUCTIONS),
                UserMessage(content=_material(previous, history)),
            ),
            profile=profile.profile,
        )
        try:
            reply = await chosen.model.complete(request)
        except LLMError as exc:
            _log.warning("conversation not summarized", turn_id=run.turn_id, reason=str(exc))
            return
        summary = reply.text.strip()[:SUMMARY_MAX_CHARS]
        if not summary:
            _log.warning("conversation not summarized: the model wrote nothing", turn=run.turn_id)
            return
        payload = MemoryUpdateRequested(
            turn_id=run.turn_id, fencing_token=run.token, summary=summary
        )
        await self._publish(
            [Envelope.derived(payload, cause=cause, role=AGENT_ROLE, key="summary")]
        )


def _material(previous: str | None, history: tuple[TranscriptEntry, ...]) -> str:
    """The previous summary and the transcript's latest lines, bounded."""
    lines: list[str] = []
    for entry in history:
        message = entry.message
        if message.role in ("user", "assistant") and message.content:
            who = "Customer" if message.role == "user" else "Assistant"
            lines.append(f"{who}: {message.content}")
    transcript = "\n".join(lines)[-_TRANSCRIPT_MAX_CHARS:]
    earlier = f"Previous summary:\n{previous}\n\n" if previous else ""
    return f"{earlier}Conversation (latest last):\n{transcript}"
