"""``routing.handoff.requested``: the dispatcher opened a turn and hands it to an agent."""

from __future__ import annotations

import itertools
from typing import ClassVar, Self

from pydantic import AwareDatetime, Field, model_validator

from events import streams
from events.envelope import EventPayload
from events.types.common import (
    AgentProfile,
    ChannelId,
    Confidence,
    FencingToken,
    Identifier,
    PayloadModel,
    ProviderMessageId,
    Seq,
    Slug,
    TurnId,
)

MAX_MESSAGES_PER_TURN = 100


class Intent(PayloadModel):
    """What the dispatcher believes the contact wants."""

    name: Slug = Field(description="Intent name from the tenant's rules, e.g. `book_appointment`.")
    confidence: Confidence = Field(description="Classifier confidence, 0 to 1.")


class TurnMessage(PayloadModel):
    """One inbound message the turn answers."""

    seq: Seq = Field(description="The message's `seq` in its conversation.")
    event_id: Identifier = Field(description="Id of its `inbox.message.received` event.")
    provider_message_id: ProviderMessageId = Field(description="Provider's id of the message.")


class RoutingHandoffRequested(EventPayload):
    """A turn was opened over one or more inbound messages and routed to an agent profile.

    The receiver works under the turn's lease: every side effect it causes carries
    `fencing_token`, and is refused downstream once a newer token exists.
    """

    event_type: ClassVar[str] = streams.ROUTING_HANDOFF_REQUESTED
    event_version: ClassVar[int] = 1
    stream: ClassVar[str] = streams.ROUTING_HANDOFF_REQUESTED

    turn_id: TurnId = Field(description="Id of the turn.")
    fencing_token: FencingToken = Field(description="Token of the turn's lease; only grows.")
    channel_id: ChannelId = Field(description="Channel the conversation lives on.")
    agent_profile: AgentProfile = Field(description="Profile that answers, e.g. `scheduling`.")
    intent: Intent | None = Field(default=None, description="Classified intent, if any.")
    messages: tuple[TurnMessage, ...] = Field(
        min_length=1,
        max_length=MAX_MESSAGES_PER_TURN,
        description="Inbound messages of the turn, in `seq` order.",
    )
    attempt: int = Field(
        default=1, ge=1, description="1 for a new turn; more when a stalled turn is resumed."
    )
    deadline_at: AwareDatetime | None = Field(
        default=None, description="When the turn is considered stalled and resumed elsewhere."
    )

    @model_validator(mode="after")
    def _messages_in_seq_order(self) -> Self:
        seqs = [message.seq for message in self.messages]
        if any(later <= earlier for earlier, later in itertools.pairwise(seqs)):
            raise ValueError(f"messages must be in strictly increasing seq order, got {seqs}")
        return self
