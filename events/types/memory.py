"""``memory.update.requested``: what to remember about a conversation, off the reply path."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from events import streams
from events.envelope import EventPayload
from events.types.common import (
    TEXT_MAX_CHARS,
    Confidence,
    FencingToken,
    Identifier,
    PayloadModel,
    TurnId,
)


class Fact(PayloadModel):
    """A structured fact about the contact; a newer fact with the same key replaces it."""

    key: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$",
        description="Dotted name, e.g. `contact.preferred_language`.",
    )
    value: str = Field(min_length=1, max_length=4_096, description="The fact, as text.")
    source: Literal["agent", "tool", "operator", "channel"] = Field(
        description="Who established it: the agent from the conversation, a tool, a human, "
        "or the channel's profile data."
    )
    confidence: Confidence = Field(default=1.0, description="How sure the source is, 0 to 1.")


class MemoryText(PayloadModel):
    """A text to embed into semantic memory."""

    source_id: Identifier = Field(
        description="Stable id of the text (event id, reply id), so a redelivery upserts."
    )
    role: Literal["contact", "agent", "operator"] = Field(description="Who wrote it.")
    text: str = Field(min_length=1, max_length=TEXT_MAX_CHARS, description="The text to embed.")


class MemoryUpdateRequested(EventPayload):
    """Facts, a summary and texts to embed for one conversation.

    When it comes from a turn it carries the turn's `fencing_token`, and is ignored once that
    token is stale.
    """

    event_type: ClassVar[str] = streams.MEMORY_UPDATE_REQUESTED
    event_version: ClassVar[int] = 1
    stream: ClassVar[str] = streams.MEMORY_UPDATE_REQUESTED

    turn_id: TurnId | None = Field(default=None, description="Turn that learned it, if any.")
    fencing_token: FencingToken | None = Field(
        default=None, description="Lease token of that turn; set exactly when `turn_id` is."
    )
    facts: tuple[Fact, ...] = Field(default=(), max_length=100, description="Facts to upsert.")
    summary: str | None = Field(
        default=None,
        min_length=1,
        max_length=16_384,
        description="New rolling summary of the conversation; replaces the previous one.",
    )
    embed: tuple[MemoryText, ...] = Field(
        default=(), max_length=256, description="Texts to add to semantic memory."
    )

    @model_validator(mode="after")
    def _consistent_and_not_empty(self) -> Self:
        if (self.turn_id is None) != (self.fencing_token is None):
            raise ValueError("turn_id and fencing_token must be set together")
        if not self.facts and self.summary is None and not self.embed:
            raise ValueError("nothing to remember: give facts, a summary or texts to embed")
        return self
