"""``handoff.to_human``: the agent asks for a human to take the conversation over.

Publishes ``conversation.handoff.human`` with the turn and its fencing token, so whoever
handles it can tell a request from a superseded turn; the agent stays silent afterwards.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from events.envelope import Envelope
from events.types import HumanHandoffRequested
from events.types.common import NOTE_MAX_CHARS, Slug
from tool_gateway.tool import Tool, ToolContext, ToolFailed, ToolUnavailable

HANDOFF_ROLE = "tool:handoff.to_human"
"""The tool's role in the id of the handoff event it derives from the tool call's request."""


class HandoffInput(BaseModel):
    """Why a human is needed, and what they should know."""

    model_config = ConfigDict(extra="forbid")

    reason: Slug = Field(
        description="Short code: `asked_for_human`, `complaint`, `unsure`, `out_of_scope`, "
        "`sensitive_topic`, `payment_problem`."
    )
    note: str = Field(
        min_length=1,
        max_length=NOTE_MAX_CHARS,
        description="For the human taking over: what the customer needs and what was tried.",
    )


class HandoffOutput(BaseModel):
    """Whether the handoff was requested (or, in a dry run, would have been)."""

    status: Literal["requested", "simulated"]
    event_id: str | None = Field(default=None, description="Id of the published event.")


def _conversation_id(context: ToolContext) -> str:
    if context.conversation_id is None:
        raise ToolFailed("a human can only take over a conversation, and this call has none")
    return context.conversation_id


async def _channel_of(context: ToolContext, conversation_id: str) -> str | None:
    """The conversation's channel, for the human's inbox; None without a database."""
    pool = context.services.postgres
    if pool is None:
        return None
    channel: str | None = await pool.fetchval(
        "SELECT channel_id FROM conversations WHERE tenant_id = $1 AND conversation_id = $2",
        context.tenant_id,
        conversation_id,
    )
    return channel


def handoff_event(
    context: ToolContext, handoff: HandoffInput, channel_id: str | None
) -> Envelope[HumanHandoffRequested]:
    """The event that asks for a human, for the calling turn."""
    payload = HumanHandoffRequested(
        reason=handoff.reason,
        note=handoff.note,
        requested_by="agent",
        channel_id=channel_id,
        turn_id=context.turn_id,
        fencing_token=context.fencing_token,
    )
    # Caused by the request, so a rerun of the call (after a crash before its answer was
    # stored) republishes the same id and the human's side can drop the copy.
    return Envelope.derived(
        payload,
        cause=context.request,
        role=HANDOFF_ROLE,
        conversation_id=_conversation_id(context),
    )


async def request_human(context: ToolContext, handoff: HandoffInput) -> HandoffOutput:
    """Publish the handoff request for this conversation."""
    conversation_id = _conversation_id(context)
    channel_id = await _channel_of(context, conversation_id)
    envelope = handoff_event(context, handoff, channel_id)
    try:
        await context.services.publisher.publish(envelope)
    except (RedisError, OSError) as exc:
        raise ToolUnavailable(f"the handoff could not be published: {exc}") from exc
    return HandoffOutput(status="requested", event_id=envelope.id)


async def simulate_handoff(context: ToolContext, handoff: HandoffInput) -> HandoffOutput:
    """What a dry run answers: the request is checked, nothing is published."""
    _conversation_id(context)
    return HandoffOutput(status="simulated")


HANDOFF_TO_HUMAN = Tool(
    name="handoff.to_human",
    description=(
        "Hand the conversation to a human agent: when the customer asks for a person, is "
        "upset, or you cannot help. Then tell the customer a person will reply, and stop."
    ),
    input_model=HandoffInput,
    output_model=HandoffOutput,
    run=request_human,
    simulate=simulate_handoff,
    writes=True,
    timeout_s=5.0,
)
