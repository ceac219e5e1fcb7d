"""``conversation.handoff.human``: a human takes the conversation over, and gives it back.

Both types share the stream: a conversation maps to one partition, so a consumer reads its
release after the handoff it ends.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from events import streams
from events.envelope import EventPayload
from events.types.common import NOTE_MAX_CHARS, ChannelId, FencingToken, Slug, TurnId


class HumanHandoffRequested(EventPayload):
    """The conversation goes to a human; the agent stays silent until it is handed back.

    Raised by the agent (it is unsure, or the contact asked), by the dispatcher (keywords,
    business hours, already assigned), by the turn watchdog after a turn ran out of retries,
    or by an operator.
    """

    event_type: ClassVar[str] = streams.CONVERSATION_HANDOFF_HUMAN
    event_version: ClassVar[int] = 1
    stream: ClassVar[str] = streams.CONVERSATION_HANDOFF_HUMAN

    reason: Slug = Field(description="Short code, e.g. `asked_for_human`, `turn_timeout`.")
    note: str | None = Field(
        default=None, max_length=NOTE_MAX_CHARS, description="Context for the human taking over."
    )
    requested_by: Literal["agent", "dispatcher", "timeout", "operator"] = Field(
        description="Which part of the system asked."
    )
    channel_id: ChannelId | None = Field(default=None, description="Channel of the conversation.")
    turn_id: TurnId | None = Field(default=None, description="Turn it interrupts, if any.")
    fencing_token: FencingToken | None = Field(
        default=None, description="Lease token of that turn; set only with `turn_id`."
    )

    @model_validator(mode="after")
    def _token_needs_turn(self) -> Self:
        if self.fencing_token is not None and self.turn_id is None:
            raise ValueError("fencing_token is set but turn_id is not")
        return self


class ConversationReleased(EventPayload):
    """The humans are done: the conversation goes back to the AI.

    Raised by the ingress when the channel's own tool says so (a Chatwoot agent resolved the
    conversation). The operator's `atende conversations release` does the same work
    directly, through the same function (`dispatcher.assignment`). Messages that arrived
    while a human held the conversation stay theirs; the next new message opens a turn.
    """

    event_type: ClassVar[str] = "conversation.handoff.released"
    event_version: ClassVar[int] = 1
    stream: ClassVar[str] = streams.CONVERSATION_HANDOFF_HUMAN

    channel_id: ChannelId = Field(description="Channel of the conversation.")
    released_by: Literal["channel", "operator"] = Field(
        description="Who gave it back: the channel's own tool, or an operator."
    )
    status: Slug = Field(description="The provider's word for it, e.g. `resolved`.")
    provider_timestamp: AwareDatetime | None = Field(
        default=None, description="When the provider says it happened."
    )
