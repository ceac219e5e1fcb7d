"""What every channel's config has, whatever its provider: the base of each provider's model.

Secrets are never written in the config file: each is a reference ``{env: NAME}`` resolved from
the environment when the file is loaded, and a missing variable is an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, Self

from limits import parse as parse_rate_limit
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from events.types.common import ChannelId, Provider
from events.types.reply_parts import ReplyTemplate

MiB = 1024 * 1024
WHATSAPP_MAX_BODY_BYTES = 3 * 1000 * 1000  # what Meta documents as its largest webhook


class StrictModel(BaseModel):
    """A config model: unknown fields are errors, and a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RecipientPace(StrictModel):
    """How fast messages may follow one another to one recipient of a channel.

    One message every ``interval_ms``, after a first ``burst`` that may leave together (the
    burst is borrowed from what follows, as WhatsApp counts its pair rate limit); ``interval_ms:
    0`` turns pacing off. A message whose slot is further than ``max_wait_s`` away is not waited
    for in the worker: its reply is delivered again when the slot comes.
    """

    interval_ms: int = Field(ge=0, le=3_600_000, description="Spacing of the messages; 0: off.")
    burst: int = Field(default=1, ge=1, le=50, description="Messages that may leave at once.")
    max_wait_s: float = Field(
        default=10.0, ge=0, le=60, description="Longest wait for a slot inside one send."
    )


class WindowTemplate(StrictModel):
    """An approved message template, sent instead of a free-form reply once the channel's
    customer-service window is closed (the only kind of message the provider then takes)."""

    name: str = Field(
        min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$", description="Template name."
    )
    language: str = Field(
        pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$", description="Its language, e.g. `pt_BR`."
    )
    parameters: tuple[Annotated[str, Field(min_length=1, max_length=1_024)], ...] = Field(
        default=(), max_length=32, description="Values of the body's placeholders, in order."
    )

    def as_part(self) -> ReplyTemplate:
        """The reply part that sends it."""
        return ReplyTemplate(name=self.name, language=self.language, parameters=self.parameters)


@dataclass(frozen=True, slots=True)
class ServiceWindow:
    """A channel's customer-service window: free-form messages only within ``hours`` of the
    contact's last message; after it, ``template`` (or, without one, a human)."""

    hours: int
    template: WindowTemplate | None


class SendingPolicy(StrictModel):
    """How replies leave through a channel: the bound of each attempt, retries, the breaker.

    The breaker is the channel's own (``channel:{id}``), its state shared by every replica in
    Redis: a failing number stops sending alone, not the tenant's other channels.
    """

    timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Bound of one HTTP attempt: connect, send, read."
    )
    max_attempts: int = Field(
        default=4, ge=1, le=10, description="Attempts of one message, rate limits and 5xx alike."
    )
    max_total_s: float = Field(
        default=30.0, gt=0, le=600, description="Time one message may take, waits included."
    )
    backoff_initial_s: float = Field(
        default=0.5, gt=0, le=60, description="First wait between attempts (full jitter)."
    )
    backoff_max_s: float = Field(
        default=8.0, gt=0, le=300, description="Longest wait between attempts."
    )
    breaker_fail_max: int = Field(
        default=5, ge=1, le=1000, description="Consecutive failures that open the breaker."
    )
    breaker_reset_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="How long an open breaker refuses sends."
    )
    recipient_pace: RecipientPace | None = Field(
        default=None,
        description="Pacing of the messages to one recipient; unset: the provider's documented "
        "limit (see the provider's channel model).",
    )

    @model_validator(mode="after")
    def _backoff_bounds(self) -> Self:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must be >= backoff_initial_s "
                f"({self.backoff_initial_s})"
            )
        return self


class ChannelBase(StrictModel):
    """What every channel has, whatever its provider; each provider's model narrows
    ``provider`` to its own name."""

    id: ChannelId
    provider: Provider
    public_url: HttpUrl | None = Field(
        default=None,
        description="URL the provider calls, when a proxy changes it (Twilio signs it).",
    )
    body_limit_bytes: int = Field(default=MiB, ge=1024, le=WHATSAPP_MAX_BODY_BYTES)
    rate_limit: str = Field(default="100/second", description="limits notation, e.g. 50/second.")
    dedup_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, le=90 * 24 * 3600)
    double_text: Literal["enqueue", "merge", "interrupt", "reject"] = "enqueue"
    sending: SendingPolicy = Field(
        default_factory=SendingPolicy,
        description="Timeout, retries and circuit breaker of the replies sent through it.",
    )

    default_recipient_pace: ClassVar[RecipientPace | None] = None
    """What the provider allows one recipient, when ``sending.recipient_pace`` is unset."""

    def recipient_pace(self) -> RecipientPace | None:
        """The pace of messages to one recipient; ``None`` when they are not paced."""
        pace = self.sending.recipient_pace or self.default_recipient_pace
        return pace if pace is not None and pace.interval_ms > 0 else None

    def service_window(self) -> ServiceWindow | None:
        """The channel's customer-service window; ``None`` when the provider has none."""
        return None

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        try:
            parse_rate_limit(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '50/second'") from None
        return value
