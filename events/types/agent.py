"""``agent.ai.response.generated``: the agent's reply for one turn, ready for delivery."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from events import streams
from events.envelope import EventPayload
from events.types.common import (
    AgentProfile,
    ChannelId,
    FencingToken,
    Identifier,
    PayloadModel,
    TurnId,
)
from events.types.reply_parts import ReplyPart


class TokenUsage(PayloadModel):
    """Tokens the model consumed for this reply, summed over the tool loop."""

    prompt_tokens: int = Field(ge=0, description="Tokens sent to the model.")
    completion_tokens: int = Field(ge=0, description="Tokens the model wrote.")


class AgentResponseGenerated(EventPayload):
    """The reply to one turn. Delivery sends it at most once (by `reply_id`) and closes the turn.

    Delivery drops it when `fencing_token` is stale, so a superseded turn never speaks.
    With `handoff` set, a human takes over after the parts (if any) are sent.
    """

    event_type: ClassVar[str] = streams.AGENT_AI_RESPONSE_GENERATED
    event_version: ClassVar[int] = 1
    stream: ClassVar[str] = streams.AGENT_AI_RESPONSE_GENERATED

    turn_id: TurnId = Field(description="Turn this reply answers.")
    fencing_token: FencingToken = Field(description="Lease token of the turn.")
    reply_id: Identifier = Field(description="Idempotency key of the send.")
    channel_id: ChannelId = Field(description="Channel to send through.")
    parts: tuple[ReplyPart, ...] = Field(
        max_length=20, description="What to send, in order; empty only with a handoff."
    )
    handoff: bool = Field(default=False, description="Hand the conversation to a human after.")
    closes_turn: bool = Field(
        default=True,
        description="False for a reply outside the turn's own flow (a double text rejected "
        "while the turn runs): delivery sends it under the turn's token and leaves the turn open.",
    )
    handoff_reason: str | None = Field(
        default=None, max_length=1_024, description="Why, for the human who takes over."
    )
    agent_profile: AgentProfile | None = Field(default=None, description="Profile that answered.")
    model: str | None = Field(
        default=None, max_length=256, description="Model that wrote it; `offline` without one."
    )
    usage: TokenUsage | None = Field(default=None, description="Token usage, when reported.")

    @model_validator(mode="after")
    def _says_something_or_hands_off(self) -> Self:
        if not self.parts and not self.handoff:
            raise ValueError("a reply needs at least one part unless it hands off to a human")
        if self.handoff_reason is not None and not self.handoff:
            raise ValueError("handoff_reason is set but handoff is false")
        return self
