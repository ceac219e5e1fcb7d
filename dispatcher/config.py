"""The ``conversations`` section of the config file: turns, double texts, routing, handoff.

```yaml
conversations:
  defaults: {double_text: enqueue, turn_deadline_s: 120}
  tenants:
    clinic:
      timezone: America/Sao_Paulo
      business_hours: {mon-fri: "08:00-18:00", sat: "08:00-12:00"}
      after_hours: handoff
      default_profile: triage
      routes:
        - {profile: scheduling, keywords: [agendar, marcar], examples: ["quero marcar"]}
      channels:
        wa-main: {double_text: merge}
```

A tenant's settings override the defaults, a channel's override its tenant's; see
docs/CONVERSATIONS.md for what each does.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from events.types.common import AgentProfile

DoubleText = Literal["enqueue", "merge", "interrupt", "reject"]

DEFAULT_HANDOFF_KEYWORDS = (
    "atendente",
    "humano",
    "falar com uma pessoa",
    "falar com alguém",
    "human",
    "agent",
    "representative",
    "real person",
    "operator",
)

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TurnSettings(_Strict):
    """What may be set at every level (defaults, tenant, channel); unset inherits."""

    double_text: DoubleText | None = None
    merge_window_ms: int | None = Field(default=None, ge=0, le=60_000)
    merge_max_wait_ms: int | None = Field(default=None, ge=0, le=300_000)
    reject_text: str | None = Field(default=None, min_length=1, max_length=1_000)
    handoff_text: str | None = Field(default=None, min_length=1, max_length=1_000)
    handoff_notice: bool | None = Field(
        default=None,
        description="Tell the contact handoff_text when a handoff itself said nothing.",
    )
    reactions_start_turns: bool | None = None


class ResolvedTurnSettings(_Strict):
    """Every turn setting of one channel, inheritance applied."""

    double_text: DoubleText = "enqueue"
    merge_window_ms: int = 1_500
    merge_max_wait_ms: int = 6_000
    reject_text: str = "Um momento, ainda estou respondendo a sua mensagem anterior."
    handoff_text: str = "Vou chamar uma pessoa da equipe para continuar o atendimento."
    handoff_notice: bool = True
    reactions_start_turns: bool = False


class Route(_Strict):
    """Messages matching any keyword, pattern or example go to ``profile``."""

    profile: AgentProfile
    keywords: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = ()
    patterns: tuple[Annotated[str, Field(min_length=1, max_length=500)], ...] = ()
    examples: tuple[Annotated[str, Field(min_length=1, max_length=500)], ...] = ()
    min_similarity: float = Field(default=0.75, gt=0, le=1)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {pattern!r} is not a regular expression: {exc}"
                ) from None
        return value

    @model_validator(mode="after")
    def _matches_something(self) -> Self:
        if not (self.keywords or self.patterns or self.examples):
            raise ValueError(f"route to {self.profile!r} has no keywords, patterns or examples")
        return self


class BusinessHours(_Strict):
    """Opening hours per day in a time zone: ``{"mon-fri": "08:00-18:00", "sat": ...}``."""

    timezone: str = "UTC"
    spans: dict[str, tuple[tuple[time, time], ...]] = Field(default_factory=dict)

    def open_at(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware) falls in the opening hours."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        day = _DAYS[local.weekday()]
        now = local.time()
        return any(start <= now < end for start, end in self.spans.get(day, ()))


class TenantConversations(TurnSettings):
    """One tenant's conversation settings."""

    timezone: str = "UTC"
    business_hours: dict[str, str] | None = Field(
        default=None,
        description="Days ('mon-fri', 'sat') to spans ('08:00-18:00'); unset: always open.",
    )
    after_hours: Literal["answer", "handoff"] = "answer"
    default_profile: AgentProfile = "triage"
    routes: tuple[Route, ...] = ()
    handoff_keywords: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = (
        DEFAULT_HANDOFF_KEYWORDS
    )
    channels: dict[str, TurnSettings] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone such as 'America/Sao_Paulo'") from None
        return value

    @field_validator("business_hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            parse_business_hours(value, "UTC")
        return value

    def hours(self) -> BusinessHours | None:
        """The opening hours, or ``None`` when always open."""
        if self.business_hours is None:
            return None
        return parse_business_hours(self.business_hours, self.timezone)


class ConversationsConfig(_Strict):
    """The ``conversations`` section."""

    defaults: TurnSettings = Field(default_factory=TurnSettings)
    turn_deadline_s: float = Field(default=120.0, gt=0, le=3_600)
    turn_max_attempts: int = Field(default=3, ge=1, le=20)
    gap_wait_ms: int = Field(default=5_000, ge=0, le=600_000)
    tenants: dict[str, TenantConversations] = Field(default_factory=dict)

    def tenant(self, tenant_id: str) -> TenantConversations:
        """A tenant's settings (all defaults when the file does not name it)."""
        return self.tenants.get(tenant_id) or TenantConversations()

    def settings_for(self, tenant_id: str, channel_id: str) -> ResolvedTurnSettings:
        """A channel's turn settings: its own, else its tenant's, else the defaults."""
        tenant = self.tenant(tenant_id)
        levels = [self.defaults, tenant, tenant.channels.get(channel_id, TurnSettings())]
        values: dict[str, object] = {}
        for level in levels:
            values.update(
                {
                    key: value
                    for key, value in level.model_dump().items()
                    if key in TurnSettings.model_fields and value is not None
                }
            )
        return ResolvedTurnSettings(**values)  # type: ignore[arg-type]


def parse_business_hours(value: dict[str, str], timezone: str) -> BusinessHours:
    """Parse ``{"mon-fri": "08:00-18:00, 19:00-21:00"}``; raise ``ValueError`` naming the entry."""
    spans: dict[str, list[tuple[time, time]]] = {}
    for days, text in value.items():
        for day in _expand_days(days):
            for span in text.split(","):
                match = _SPAN.match(span.strip())
                if match is None:
                    raise ValueError(
                        f"business_hours[{days!r}]: {span.strip()!r} is not 'HH:MM-HH:MM'"
                    )
                start = time(int(match[1]), int(match[2]))
                end = time.max if match[3] == "24" else time(int(match[3]), int(match[4]))
                if end <= start:
                    raise ValueError(
                        f"business_hours[{days!r}]: {span.strip()!r} ends before it starts"
                    )
                spans.setdefault(day, []).append((start, end))
    return BusinessHours(timezone=timezone, spans={day: tuple(s) for day, s in spans.items()})


def _expand_days(days: str) -> tuple[str, ...]:
    first, _, last = days.strip().lower().partition("-")
    if first not in _DAYS or (last and last not in _DAYS):
        raise ValueError(f"business_hours: {days!r} is not a day or range such as 'mon-fri'")
    if not last:
        return (first,)
    start, end = _DAYS.index(first), _DAYS.index(last)
    if end < start:
        raise ValueError(f"business_hours: {days!r} runs backwards")
    return _DAYS[start : end + 1]
