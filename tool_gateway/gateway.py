"""The pipeline every tool call goes through, from the request to the answer.

answered already? → known turn → RBAC → arguments → rate limit → claim → fencing → run → store.

A call that already ran is answered from its stored result first, so a redelivered request
neither spends rate-limit budget nor can be refused after the fact. Every other request leaves
an audit row, refused or not (except for a tenant the database does not know: the row would
have nobody to belong to; it is logged and counted). Dry runs (replays) are claimed under a key
of their own, ``dry-run:<turn>:<call>``, so a replay never answers a live call or the reverse.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ValidationError

from dispatcher.turns import TurnGuard, TurnRefs
from events.envelope import Envelope
from events.types.tools import ToolCallCompleted, ToolCallRequested
from libs.errors import RetryLater
from libs.rate_limits import redis_limiter
from libs.yaml_config import describe_errors
from tool_gateway.audit import AuditTrail, CallRecord, Outcome, redact
from tool_gateway.config import AgentProfilesConfig, ToolsConfig
from tool_gateway.execution import Execution, ToolExecutor, tool_error
from tool_gateway.idempotency import Answered, CallLedger, Claimed, InProgress, StoredAnswer
from tool_gateway.metrics import TOOL_CALL_DURATION, TOOL_CALLS, UNREGISTERED
from tool_gateway.rate_limits import ToolRateLimits
from tool_gateway.rbac import AccessPolicy
from tool_gateway.registry import AnyTool, ToolRegistry
from tool_gateway.tool import ToolContext, ToolServices

_log = structlog.get_logger(__name__)

GATEWAY_ROLE = "tool-gateway"
"""The gateway's role in the ids of the events it derives from requests."""

# Shortest wait before asking again about a call another worker is running.
_MIN_RETRY_MS = 100


@dataclass(frozen=True, slots=True)
class _Call:
    """One request being answered, and what the pipeline learned about it so far."""

    envelope: Envelope[ToolCallRequested]
    tool: AnyTool | None
    started_s: float

    @property
    def payload(self) -> ToolCallRequested:
        return self.envelope.payload

    @property
    def tenant_id(self) -> str:
        return self.envelope.tenant_id

    @property
    def key(self) -> str:
        key = self.payload.idempotency_key
        return f"dry-run:{key}" if self.payload.dry_run else key

    @property
    def label(self) -> str:
        return self.tool.name if self.tool is not None else UNREGISTERED

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started_s) * 1000)

    def record(self, refs: TurnRefs) -> CallRecord:
        sensitive = self.tool.sensitive_fields() if self.tool is not None else None
        return CallRecord(
            tenant_id=self.tenant_id,
            conversation_id=self.envelope.conversation_id if refs.conversation_known else None,
            turn_id=self.payload.turn_id if refs.turn_known else None,
            fencing_token=self.payload.fencing_token,
            agent_profile=self.payload.agent_profile,
            tool=self.payload.tool,
            arguments=redact(self.payload.arguments, sensitive),
            idempotency_key=self.key,
            dry_run=self.payload.dry_run,
        )


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A call stopped before it was claimed."""

    outcome: Outcome
    error_code: str
    answer: StoredAnswer


class ToolGateway:
    """Answers ``tools.call.requested`` events; the consumer publishes what it returns."""

    def __init__(
        self,
        registry: ToolRegistry,
        agents: AgentProfilesConfig,
        settings: ToolsConfig,
        services: ToolServices,
        *,
        limiter: MovingWindowRateLimiter | None = None,
    ) -> None:
        if services.postgres is None:
            raise ValueError("the tool gateway needs Postgres: its audit is the idempotency ledger")
        pool = services.postgres
        self._registry = registry
        self._services = services
        self._takeover_grace_s = settings.pending_takeover_s
        self._policy = AccessPolicy(agents)
        limiter = limiter or redis_limiter(services.redis, services.keys)
        self._limits = ToolRateLimits(limiter, agents, settings)
        self._ledger = CallLedger(pool, takeover_after_s=settings.pending_takeover_s)
        self._audit = AuditTrail(pool)
        self._turns = TurnGuard(
            pool, services.redis, services.keys, partitions=services.publisher.partitions
        )
        self._executor = ToolExecutor(
            services.redis,
            services.keys,
            fail_max=settings.breaker_fail_max,
            reset_timeout_s=settings.breaker_reset_timeout_s,
        )

    @property
    def policy(self) -> AccessPolicy:
        """The permissions the gateway enforces (e.g. to offer a profile its tools)."""
        return self._policy

    async def handle(self, envelope: Envelope[ToolCallRequested]) -> ToolCallCompleted:
        """Answer one request; ``RetryLater`` while another worker runs the same call."""
        call = _Call(envelope, self._registry.get(envelope.payload.tool), time.monotonic())
        stored = await self._ledger.answered(call.tenant_id, call.key)
        if stored is not None:
            return self._finish(call, stored, outcome="replayed", replayed=True)
        refs = await self._turns.lookup(
            call.tenant_id, envelope.conversation_id, envelope.payload.turn_id
        )
        record = call.record(refs)
        admitted = await self._admit(call, refs)
        if isinstance(admitted, _Refusal):
            if refs.tenant_known:
                await self._audit.record_refusal(
                    record, admitted.outcome, admitted.error_code, call.elapsed_ms()
                )
            _log.info("tool call refused", tool=call.payload.tool, reason=admitted.error_code)
            return self._finish(call, admitted.answer, outcome=admitted.outcome)
        assert call.tool is not None  # admitted calls name a registered tool
        # A live call ends within its timeout; a claim pending past that and the grace belongs
        # to a worker that died, and must be taken over within the entry's redeliveries.
        takeover_s = call.tool.timeout_s + self._takeover_grace_s
        claim = await self._ledger.claim(record, takeover_after_s=takeover_s)
        if isinstance(claim, Answered):
            return self._finish(call, claim.answer, outcome="replayed", replayed=True)
        if isinstance(claim, InProgress):
            raise self._wait_for_other_worker(call.tool, claim)
        try:
            # Counted only once claimed: a duplicate of a running call spends no budget and
            # cannot answer "rate limited" for a call that is about to succeed.
            execution = await self._rate_limited(call) or await self._run_claimed(
                call, call.tool, refs, admitted
            )
        except Exception:
            await self._release(call, claim)
            raise
        await self._complete(call, claim, execution)
        return self._finish(call, execution.answer, outcome=execution.outcome)

    async def _rate_limited(self, call: _Call) -> Execution | None:
        """The refusal of a call over its window, or None when it may run."""
        payload = call.payload
        decision = await self._limits.hit(
            call.tenant_id, payload.agent_profile, payload.tool, dry_run=payload.dry_run
        )
        if decision.allowed:
            return None
        message = (
            f"{payload.tool} is limited to {decision.limit} for this agent; "
            f"try again in {decision.retry_after_ms} ms"
        )
        answer = tool_error("rate_limited", message, decision.retry_after_ms)
        return Execution("rate_limited", "rate_limited", answer, False)

    async def _release(self, call: _Call, claim: Claimed) -> None:
        """Give a claim back after an infrastructure error, so a redelivery runs the call."""
        try:
            await self._ledger.complete(
                call.tenant_id,
                claim,
                outcome="failed",
                error_code="crashed",
                answer=None,
                latency_ms=call.elapsed_ms(),
            )
        except Exception:  # noqa: BLE001 - the error being raised matters more; takeover remains
            _log.warning("could not release a tool call's claim", idempotency_key=call.key)

    async def _admit(self, call: _Call, refs: TurnRefs) -> BaseModel | _Refusal:
        """The validated arguments of a call that may run now, or why it may not."""
        payload = call.payload
        if not refs.tenant_known:
            return _denied("unknown_tenant", f"tenant {call.tenant_id!r} is unknown")
        if not refs.turn_known:
            return _denied(
                "unknown_turn",
                f"turn {payload.turn_id!r} is not a turn of conversation "
                f"{call.envelope.conversation_id!r}; tool calls need an opened turn",
            )
        reason = self._policy.refusal(call.tenant_id, payload.agent_profile, payload.tool)
        if reason is not None:
            return _denied("not_allowed", reason)
        if call.tool is None:
            return _denied("unknown_tool", f"no tool named {payload.tool!r} is registered")
        try:
            arguments: BaseModel = call.tool.input_model.model_validate(payload.arguments)
        except ValidationError as exc:
            message = f"arguments for {payload.tool} are invalid: {describe_errors(exc)}"
            answer = tool_error("invalid_arguments", message)
            return _Refusal("invalid_arguments", "invalid_arguments", answer)
        return arguments

    async def _run_claimed(
        self, call: _Call, tool: AnyTool, refs: TurnRefs, arguments: BaseModel
    ) -> Execution:
        payload = call.payload
        # A dry run changes nothing, so a replay of an old turn may still simulate its writes.
        if tool.writes and not payload.dry_run:
            stale = await self._turns.stale(
                call.tenant_id,
                call.envelope.conversation_id,
                payload.fencing_token,
                stored_token=refs.stored_token,
            )
            if stale is not None:
                message = f"{stale.describe(payload.turn_id)}; {tool.name} was not run"
                return Execution("stale", "stale_turn", tool_error("not_allowed", message), False)
        context = ToolContext(
            tenant_id=call.tenant_id,
            conversation_id=call.envelope.conversation_id,
            turn_id=payload.turn_id,
            fencing_token=payload.fencing_token,
            agent_profile=payload.agent_profile,
            tool_call_id=payload.tool_call_id,
            dry_run=payload.dry_run,
            request=call.envelope,
            services=self._services,
        )
        return await self._executor.execute(tool, context, arguments)

    async def _complete(self, call: _Call, claim: Claimed, execution: Execution) -> None:
        answer = _marked(execution.answer, dry_run=call.payload.dry_run)
        kept = await self._ledger.complete(
            call.tenant_id,
            claim,
            outcome=execution.outcome,
            error_code=execution.error_code,
            answer=answer if execution.ran else None,
            latency_ms=call.elapsed_ms(),
        )
        if not kept:
            _log.warning(
                "tool call finished after another worker took it over; its answer is not stored",
                tool=call.payload.tool,
                idempotency_key=call.key,
            )

    def _wait_for_other_worker(self, tool: AnyTool, claim: InProgress) -> RetryLater:
        # The claimer either answers within the tool's timeout or died; ask again when one of
        # the two is certain.
        delay_ms = min(claim.takeover_in_ms, int(tool.timeout_s * 1000) + 1000)
        return RetryLater(
            f"another worker is running this call of {tool.name}", max(_MIN_RETRY_MS, delay_ms)
        )

    def _finish(
        self, call: _Call, answer: StoredAnswer, *, outcome: str, replayed: bool = False
    ) -> ToolCallCompleted:
        TOOL_CALLS.labels(call.label, outcome).inc()
        TOOL_CALL_DURATION.labels(call.label).observe(time.monotonic() - call.started_s)
        if not replayed:
            answer = _marked(answer, dry_run=call.payload.dry_run)
        payload = call.payload
        return ToolCallCompleted(
            turn_id=payload.turn_id,
            fencing_token=payload.fencing_token,
            tool_call_id=payload.tool_call_id,
            tool=payload.tool,
            outcome=answer.outcome,
            result=answer.result,
            error=answer.error,
            duration_ms=call.elapsed_ms(),
            dry_run=answer.dry_run,
            replayed=replayed,
        )


def _denied(error_code: str, message: str) -> _Refusal:
    return _Refusal("denied", error_code, tool_error("not_allowed", message))


def _marked(answer: StoredAnswer, *, dry_run: bool) -> StoredAnswer:
    return answer if answer.dry_run == dry_run else answer.model_copy(update={"dry_run": dry_run})


def completed_event(
    request: Envelope[ToolCallRequested], completed: ToolCallCompleted
) -> Envelope[Any]:
    """The ``tools.call.completed`` envelope answering ``request`` (same tenant, conversation
    and correlation; caused by the request).

    Its id is derived from the request's, so answering a redelivered request again (a crash
    between publishing the answer and acknowledging the request) republishes the same id.
    """
    return Envelope.derived(completed, cause=request, role=GATEWAY_ROLE)
