"""The AI agent: runs a turn through the chat model, its tool calls out as events and back.

A turn starts on ``routing.handoff.requested`` (``start_turn``) and continues on each
``tools.call.completed`` (``resume``) until the model answers in text. Every failure ends in a
reply: the profile's fallback text and a handoff to a human, never silence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from ai_agent.chat_models import ChatModels, failure_reason
from ai_agent.inbound import read_turn_inbound
from ai_agent.llm import (
    ChatReply,
    ChatRequest,
    LLMError,
    Usage,
)
from ai_agent.phrases import phrase
from ai_agent.prompt import chat_request
from ai_agent.replies import call_problem, facts_event, reply_event, tool_request_events
from ai_agent.step_timeouts import ToolStepTimeouts
from ai_agent.summaries import Summarizer
from ai_agent.tool_routing import route_calls, tool_result_content
from ai_agent.transcript import StaleResult, TranscriptEntry, TranscriptStore, TurnRun, add_usage
from ai_agent.turn_media import TurnMedia
from dispatcher.mailbox import ConversationRef, Mailbox
from dispatcher.turns import TurnGuard
from events.envelope import Envelope
from events.partitions import partition_for
from events.types.routing import RoutingHandoffRequested
from events.types.tools import ToolCallCompleted
from libs.errors import Drop
from memory_manager.context import AgentContext, ContextBuilder
from tool_gateway.config import AgentProfileConfig, AgentProfilesConfig
from tool_gateway.registry import ToolRegistry

_log = structlog.get_logger(__name__)

Publish = Callable[[list[Envelope[Any]]], Awaitable[object]]
"""Publishes events (``Publisher.publish_many``)."""

CONTEXT_TOKEN_BUDGET = 2_000


@dataclass(frozen=True, slots=True)
class AgentDeps:
    """What the agent works with; built once per process by its consumer."""

    pool: asyncpg.Pool
    transcript: TranscriptStore
    models: ChatModels
    profiles: AgentProfilesConfig
    tools: ToolRegistry
    guard: TurnGuard
    mailbox: Mailbox
    context: ContextBuilder | None
    publish: Publish
    partitions: int
    media: TurnMedia
    step_timeouts: ToolStepTimeouts | None = None


class AIAgent:
    """Answers turns: one LLM call per step, tool calls as events, a reply at the end."""

    def __init__(self, deps: AgentDeps) -> None:
        self._deps = deps
        self._summarizer = Summarizer(deps.pool, deps.publish)

    async def start_turn(self, envelope: Envelope[RoutingHandoffRequested]) -> None:
        """Begin (or, redelivered, continue) the turn ``envelope`` opened."""
        turn = envelope.payload
        tenant_id, conversation_id = envelope.tenant_id, envelope.conversation_id
        await self._require_current(envelope, turn.turn_id, turn.fencing_token)
        profile = self._deps.profiles.answering(tenant_id, turn.agent_profile)
        seqs = [message.seq for message in turn.messages]
        inbound = await read_turn_inbound(self._deps.pool, tenant_id, conversation_id, seqs)
        new = TurnRun(
            turn_id=turn.turn_id,
            token=turn.fencing_token,
            profile=turn.agent_profile,
            channel_id=turn.channel_id,
        )
        if any(message.media is not None for message in inbound.messages):
            await self._extend_deadline(envelope, turn.fencing_token)  # fetching takes a while
        offline = self._deps.models.for_profile(profile).offline
        prepared = await self._deps.media.prepare(
            tenant_id,
            conversation_id,
            turn.channel_id,
            inbound,
            profile,
            can_see=profile.vision and not offline,
        )
        start = await self._deps.transcript.begin(
            tenant_id, conversation_id, new, prepared.messages
        )
        if start is None:
            raise Drop(f"turn {turn.turn_id} token {turn.fencing_token} is answered or superseded")
        if start.run.waiting_for:
            # Redelivered after the calls were stored: make sure they went out (same ids).
            await self._send_tools(envelope, start.run, profile)
            return
        if prepared.cannot is not None:
            said = phrase(prepared.cannot, profile.language)
            await self._answer(envelope, start.run, said, None, None)
            return
        await self._step(envelope, start.history, start.run, profile)

    async def resume(self, envelope: Envelope[ToolCallCompleted]) -> None:
        """Record a tool result; once the step has all of its results, ask the model again."""
        result = envelope.payload
        tenant_id, conversation_id = envelope.tenant_id, envelope.conversation_id
        await self._require_current(envelope, result.turn_id, result.fencing_token)
        try:
            run = await self._deps.transcript.record_result(
                tenant_id,
                conversation_id,
                result.fencing_token,
                result.tool_call_id,
                tool_result_content(result),
            )
        except StaleResult as exc:
            raise Drop(str(exc)) from exc
        if run is None:
            return  # other calls of the step are still running
        profile = self._deps.profiles.answering(tenant_id, run.profile)
        history = await self._deps.transcript.history(tenant_id, conversation_id)
        await self._step(envelope, history, run, profile)

    async def _step(
        self,
        cause: Envelope[Any],
        history: tuple[TranscriptEntry, ...],
        run: TurnRun,
        profile: AgentProfileConfig,
    ) -> None:
        """One LLM call (or its kept reply) and what follows from it."""
        tenant_id, conversation_id = cause.tenant_id, cause.conversation_id
        transcript = self._deps.transcript
        chosen = self._deps.models.for_profile(profile)
        reply = await transcript.stored_reply(tenant_id, conversation_id, run.token, run.step)
        if reply is None:
            if not await transcript.claim_step(tenant_id, conversation_id, run.token, run.step):
                raise Drop(f"turn {run.turn_id} step {run.step}: another delivery asks the model")
            request = await self._request(cause, history, run, profile, chosen.name)
            await self._extend_deadline(cause, run.token)
            try:
                fresh = await chosen.model.complete(request)
            except LLMError as exc:
                await self._fall_back(cause, run, profile, failure_reason(exc))
                return
            reply = await transcript.keep_reply(
                tenant_id, conversation_id, run.token, run.step, fresh
            )
        await self._follow(cause, run, profile, reply)

    async def _follow(
        self, cause: Envelope[Any], run: TurnRun, profile: AgentProfileConfig, reply: ChatReply
    ) -> None:
        usage = add_usage(run.usage, reply.usage)
        if not reply.tool_calls:
            text = reply.text.strip()[: profile.reply_max_chars]
            if not text:
                await self._fall_back(cause, run, profile, "the model answered with no text")
                return
            await self._answer(cause, run, text, reply.model, usage)
            await self._summarize(cause, run, profile)
            return
        if run.step >= profile.max_tool_steps:
            reason = (
                f"the model still asked for tools after max_tool_steps ({profile.max_tool_steps})"
            )
            await self._fall_back(cause, run, profile, reason)
            return
        for call in reply.tool_calls:
            if (problem := call_problem(call)) is not None:
                await self._fall_back(cause, run, profile, f"invalid tool call: {problem}")
                return
        routes = self._routes()
        routed = route_calls(reply.tool_calls, routes, remember_facts=profile.remember_facts)
        if routed.facts:
            await self._deps.publish([facts_event(cause, run, routed.facts)])
        waiting = run.with_reply(reply, answered=routed.answered, waiting_for=routed.to_gateway)
        transcript = self._deps.transcript
        if not await transcript.await_tools(cause.tenant_id, cause.conversation_id, waiting):
            raise Drop(f"turn {run.turn_id} token {run.token} was superseded during the call")
        if waiting.waiting_for:
            # Stored before published: a fast result always finds the step waiting for it.
            await self._send_tools(cause, waiting, profile)
            return
        # Every call was answered here: the model reads the answers at once (the step cap
        # bounds how often).
        history = await transcript.history(cause.tenant_id, cause.conversation_id)
        await self._step(cause, history, waiting, profile)

    async def _send_tools(
        self, cause: Envelope[Any], run: TurnRun, profile: AgentProfileConfig
    ) -> None:
        """Publish the calls ``run`` waits for, filed to time out if their results are late."""
        requests = tool_request_events(cause, run, self._routes())
        await self._deps.publish(list(requests))
        if self._deps.step_timeouts is not None:
            await self._deps.step_timeouts.schedule(requests, run.step, profile.tool_step_timeout_s)

    async def _request(
        self,
        cause: Envelope[Any],
        history: tuple[TranscriptEntry, ...],
        run: TurnRun,
        profile: AgentProfileConfig,
        model: str,
    ) -> ChatRequest:
        offered = self._deps.tools.function_definitions(profile.allows)
        context = await self._context(cause)
        return chat_request(profile, context, history, run, model=model, tools=offered)

    async def _context(self, cause: Envelope[Any]) -> AgentContext | None:
        if self._deps.context is None:
            return None
        return await self._deps.context.build(
            cause.tenant_id, cause.conversation_id, token_budget=CONTEXT_TOKEN_BUDGET
        )

    async def _answer(
        self,
        cause: Envelope[Any],
        run: TurnRun,
        text: str,
        model: str | None,
        usage: Usage | None,
    ) -> None:
        await self._deps.publish([reply_event(cause, run, text, model=model, usage=usage)])
        await self._deps.transcript.finish(cause.tenant_id, cause.conversation_id, run, text)

    async def _summarize(
        self, cause: Envelope[Any], run: TurnRun, profile: AgentProfileConfig
    ) -> None:
        """After the reply is out: the summary every ``summary_every_turns`` turns."""
        if profile.summary_every_turns is None:
            return
        history = await self._deps.transcript.history(cause.tenant_id, cause.conversation_id)
        chosen = self._deps.models.for_profile(profile)
        await self._summarizer.after_reply(cause, run, profile, chosen, history)

    async def _fall_back(
        self, cause: Envelope[Any], run: TurnRun, profile: AgentProfileConfig, reason: str
    ) -> None:
        _log.warning("agent falls back to a human", turn_id=run.turn_id, reason=reason)
        text = profile.fallback
        event = reply_event(cause, run, text, model=None, usage=run.usage, handoff_reason=reason)
        await self._deps.publish([event])
        await self._deps.transcript.finish(cause.tenant_id, cause.conversation_id, run, text)

    async def _require_current(self, cause: Envelope[Any], turn_id: str, token: int) -> None:
        refs = await self._deps.guard.lookup(cause.tenant_id, cause.conversation_id, turn_id)
        if not refs.turn_known:
            raise Drop(f"turn {turn_id} of conversation {cause.conversation_id} is not on record")
        stale = await self._deps.guard.stale(
            cause.tenant_id, cause.conversation_id, token, stored_token=refs.stored_token
        )
        if stale is not None:
            raise Drop(stale.describe(turn_id))

    async def _extend_deadline(self, cause: Envelope[Any], token: int) -> None:
        partition = partition_for(cause.tenant_id, cause.conversation_id, self._deps.partitions)
        conversation = ConversationRef(cause.tenant_id, cause.conversation_id, partition)
        if not await self._deps.mailbox.extend(conversation, token):
            # The Postgres token check passed; the lease may simply not be in this Redis.
            _log.info("turn deadline not extended: its lease holds another token", token=token)

    def _routes(self) -> dict[str, str]:
        """Every registered tool by function name, offered to the profile or not."""
        return {tool.function_name: tool.name for tool in self._deps.tools}
