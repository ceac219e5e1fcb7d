"""``tools.call.requested`` and ``tools.call.completed``: the agent's tool calls and results."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, JsonValue, model_validator

from events import streams
from events.envelope import EventPayload
from events.types.common import AgentProfile, FencingToken, PayloadModel, TurnId

ToolName = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"),
]
ToolCallId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
ToolErrorCode = Literal[
    "not_allowed", "rate_limited", "invalid_arguments", "timeout", "unavailable", "failed"
]


class ToolCallRequested(EventPayload):
    """The agent asks the tool gateway to run one tool on behalf of a turn.

    `(turn_id, tool_call_id)` is the idempotency key: a repeated request returns the stored
    result instead of running the tool again.
    """

    event_type: ClassVar[str] = streams.TOOLS_CALL_REQUESTED
    event_version: ClassVar[int] = 1
    stream: ClassVar[str] = streams.TOOLS_CALL_REQUESTED

    turn_id: TurnId = Field(description="Turn the call belongs to.")
    fencing_token: FencingToken = Field(description="Lease token of the turn.")
    tool_call_id: ToolCallId = Field(description="Id of the call within the turn (from the LLM).")
    tool: ToolName = Field(
        description="Registered tool, `namespace.action`, e.g. `appointments.book`."
    )
    arguments: dict[str, JsonValue] = Field(
        default_factory=dict, description="Arguments, validated by the tool's input schema."
    )
    agent_profile: AgentProfile = Field(description="Profile whose permissions apply.")
    dry_run: bool = Field(default=False, description="Validate and audit, but change nothing.")

    @property
    def idempotency_key(self) -> str:
        """Key under which the gateway stores this call's result."""
        return f"{self.turn_id}:{self.tool_call_id}"


class ToolError(PayloadModel):
    """Why a tool call produced no result."""

    code: ToolErrorCode = Field(description="Machine-readable cause.")
    message: str = Field(
        min_length=1, max_length=2_048, description="Sentence the agent (and the LLM) can read."
    )
    retry_after_ms: int | None = Field(
        default=None, ge=0, description="When retrying makes sense, after how long."
    )


class ToolCallCompleted(EventPayload):
    """The outcome of one tool call: a JSON result, or a structured error."""

    event_type: ClassVar[str] = streams.TOOLS_CALL_COMPLETED
    event_version: ClassVar[int] = 1
    stream: ClassVar[str] = streams.TOOLS_CALL_COMPLETED

    turn_id: TurnId = Field(description="Turn the call belongs to.")
    fencing_token: FencingToken = Field(description="Lease token of the turn, as requested.")
    tool_call_id: ToolCallId = Field(description="Id of the call within the turn.")
    tool: ToolName = Field(description="Tool that was called.")
    outcome: Literal["ok", "error"] = Field(description="`ok` with a result, or `error`.")
    result: JsonValue = Field(default=None, description="The tool's output when `ok`.")
    error: ToolError | None = Field(default=None, description="The failure when `error`.")
    duration_ms: int = Field(ge=0, description="Time the gateway spent on the call.")
    dry_run: bool = Field(default=False, description="The call changed nothing.")
    replayed: bool = Field(
        default=False, description="Answered from the stored result of an earlier identical call."
    )

    @model_validator(mode="after")
    def _result_xor_error(self) -> Self:
        if self.outcome == "ok" and self.error is not None:
            raise ValueError("an ok outcome cannot carry an error")
        if self.outcome == "error" and (self.error is None or self.result is not None):
            raise ValueError("an error outcome needs an error and no result")
        return self
