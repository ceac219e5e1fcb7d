"""The gateway's sections of the config file: agent profiles (``agents``) and knobs (``tools``).

```yaml
agents:
  - tenant: acme
    profile: sales
    tools: [catalog.search, "appointments.*"]
    rate_limits: {"*": "30/minute", "appointments.book": "5/minute"}
tools:
  default_rate_limit: "60/minute"
  pending_takeover_s: 30
```

Tool names are checked for shape here and against the registry at start-up
(``unknown_tool_problems``), so the models stay usable before any tool is imported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal, Self

from limits import parse as parse_rate_limit
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    field_validator,
    model_validator,
)

from events.types.common import AgentProfile
from tool_gateway.tools.email import EmailConfig
from tool_gateway.tools.http_api import HttpApiConfig

_TOOL_NAME = r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+"
_TOOL_PATTERN = re.compile(rf"^({_TOOL_NAME}|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.\*)$")

TenantId = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
ANY_TOOL = "*"
"""Key of ``rate_limits`` that applies to each tool without a more specific entry."""


def pattern_matches(pattern: str, tool: str) -> bool:
    """Whether ``pattern`` (a tool name or ``namespace.*``) covers the tool named ``tool``."""
    if pattern == ANY_TOOL:
        return True
    if pattern.endswith(".*"):
        return tool.startswith(pattern[:-1])
    return pattern == tool


def _check_rate_limit(value: str) -> str:
    try:
        parse_rate_limit(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a rate limit such as '30/minute'") from None
    return value


def _check_pattern(value: str) -> str:
    if value == ANY_TOOL:
        raise ValueError(
            "'*' would allow every tool; list tool names or namespaces such as 'catalog.*'"
        )
    if not _TOOL_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is neither a tool name ('catalog.search') nor a namespace ('catalog.*')"
        )
    return value


ToolPattern = Annotated[str, Field(max_length=66), AfterValidator(_check_pattern)]
"""A tool name (``appointments.book``) or every tool of a namespace (``appointments.*``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FALLBACK_TEXTS = {
    "pt": "Desculpe, não consegui responder agora. Vou chamar uma pessoa da equipe para continuar.",
    "en": "Sorry, I could not answer just now. I am bringing in a person from our team.",
}
"""What a profile says when the agent cannot answer, by language, when it sets no text."""


class AgentProfileConfig(_Strict):
    """One agent profile of one tenant: what it may call and how often, and how it answers.

    The answering fields are optional; a profile routed to but not declared answers with the
    defaults and no tools. ``provider`` None means OpenAI when a key or a server URL is
    configured, else the offline model.
    """

    tenant: TenantId
    profile: AgentProfile
    tools: tuple[ToolPattern, ...] = Field(
        default=(),
        description="Tool names or namespace wildcards ('appointments.*') the profile may call.",
    )
    provider: Literal["openai", "local"] | None = Field(
        default=None, description="Who answers; unset: openai when configured, else local."
    )
    model: str | None = Field(
        default=None, min_length=1, max_length=256, description="Model name; unset: the default."
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    system_prompt: str | None = Field(default=None, min_length=1, max_length=16_000)
    language: str = Field(
        default="pt-BR",
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        description="BCP 47 tag of the language the profile answers in, e.g. `pt-BR`.",
    )
    max_tool_steps: int = Field(
        default=5, ge=0, le=50, description="Tool rounds per turn before the agent gives up."
    )
    tool_step_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3_600,
        description="How long a tool step waits for its results; a call still unanswered then "
        "gets a `timeout` result and the model answers (keep it below the turn deadline).",
    )
    reply_max_chars: int = Field(default=4_096, ge=1, le=65_536)
    fallback_text: str | None = Field(
        default=None,
        min_length=1,
        max_length=1_024,
        description="Sent with a handoff when the agent cannot answer; unset: by language.",
    )
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description="Per tool (or '*', or 'namespace.*'), in limits notation: '5/minute'. "
        "Each tool has its own window per tenant and profile.",
    )
    remember_facts: bool = Field(
        default=False,
        description="Offer the model `remember_fact` (key, value): facts the customer states "
        "are saved to memory (memory.update.requested).",
    )
    summary_every_turns: int | None = Field(
        default=None,
        ge=1,
        le=1_000,
        description="After every this many answered turns, the model summarizes the "
        "conversation into memory, after the reply is out; unset: never.",
    )
    transcribe_audio: bool = Field(
        default=False,
        description="Voice notes and audio are fetched from the channel and transcribed "
        "(OpenAI-compatible /audio/transcriptions) before the model sees the turn; "
        "unset: the agent asks for text.",
    )
    transcription_model: str = Field(
        default="whisper-1", min_length=1, max_length=256, description="Model that transcribes."
    )
    vision: bool = Field(
        default=False,
        description="Images are fetched from the channel and shown to the model (it must be "
        "vision-capable); unset: the agent asks for a description in words.",
    )
    media_max_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1_024,
        le=25 * 1024 * 1024,
        description="Largest voice note or image fetched (OpenAI takes audio up to 25 MB).",
    )

    @field_validator("tools")
    @classmethod
    def _listed_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if duplicated := sorted({p for p in value if value.count(p) > 1}):
            raise ValueError(f"tools listed twice: {', '.join(duplicated)}")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _valid_rate_limits(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern, limit in value.items():
            if pattern != ANY_TOOL:
                _check_pattern(pattern)
            try:
                _check_rate_limit(limit)
            except ValueError as exc:
                raise ValueError(f"{pattern}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _limits_name_allowed_tools(self) -> Self:
        # A limit on a tool the profile cannot call is a typo that would silently not apply.
        for pattern in self.rate_limits:
            if pattern == ANY_TOOL or pattern.endswith(".*"):
                continue
            if not self.allows(pattern):
                raise ValueError(
                    f"rate_limits names {pattern!r}, which is not among the profile's tools"
                )
        return self

    def allows(self, tool: str) -> bool:
        """Whether this profile may call ``tool``."""
        return any(pattern_matches(pattern, tool) for pattern in self.tools)

    @property
    def fallback(self) -> str:
        """``fallback_text``, or the default of the profile's language (English otherwise)."""
        if self.fallback_text is not None:
            return self.fallback_text
        return FALLBACK_TEXTS.get(self.language.split("-")[0].lower(), FALLBACK_TEXTS["en"])


class AgentProfilesConfig(RootModel[tuple[AgentProfileConfig, ...]]):
    """The ``agents`` section: every (tenant, profile) pair once."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _unique_profiles(self) -> Self:
        pairs = [(agent.tenant, agent.profile) for agent in self.root]
        if duplicated := sorted({pair for pair in pairs if pairs.count(pair) > 1}):
            named = ", ".join(f"{tenant}/{profile}" for tenant, profile in duplicated)
            raise ValueError(f"agent profiles must be declared once per tenant; repeated: {named}")
        return self

    def profile(self, tenant: str, profile: str) -> AgentProfileConfig | None:
        """The profile ``profile`` of ``tenant``, if declared."""
        for agent in self.root:
            if agent.tenant == tenant and agent.profile == profile:
                return agent
        return None

    def answering(self, tenant: str, profile: str) -> AgentProfileConfig:
        """The profile ``profile`` of ``tenant``; the defaults (and no tools) if not declared."""
        declared = self.profile(tenant, profile)
        return declared or AgentProfileConfig(tenant=tenant, profile=profile)


class ToolsConfig(_Strict):
    """The ``tools`` section: the gateway's own knobs (tools add their parts beside them)."""

    default_rate_limit: str = Field(
        default="60/minute", description="For tools a profile sets no limit for."
    )
    pending_takeover_s: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="Grace after a tool's timeout: a call claimed longer ago than the two and "
        "never completed (its worker died) is run again by the next request for it.",
    )
    breaker_fail_max: int = Field(
        default=5,
        ge=1,
        le=1_000,
        description="Failures in a row that open an external tool's breaker.",
    )
    breaker_reset_timeout_s: float = Field(
        default=30.0, gt=0, le=3_600, description="How long an open breaker refuses calls."
    )
    email: EmailConfig | None = Field(
        default=None, description="SMTP server and sender of `email.send`; unset: not available."
    )
    http_apis: tuple[HttpApiConfig, ...] = Field(
        default=(), description="External APIs `http.request` may call, by name."
    )

    @field_validator("http_apis")
    @classmethod
    def _api_names_unique(cls, value: tuple[HttpApiConfig, ...]) -> tuple[HttpApiConfig, ...]:
        names = [api.name for api in value]
        if duplicated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"http_apis names must be unique; repeated: {', '.join(duplicated)}")
        return value

    @field_validator("default_rate_limit")
    @classmethod
    def _valid_default(cls, value: str) -> str:
        return _check_rate_limit(value)


def unknown_tool_problems(agents: AgentProfilesConfig, tool_names: Iterable[str]) -> list[str]:
    """One sentence per listed tool that no registered tool matches (for start-up checks)."""
    names = sorted(set(tool_names))
    problems: list[str] = []
    for index, agent in enumerate(agents.root):
        for position, pattern in enumerate(agent.tools):
            if not any(pattern_matches(pattern, name) for name in names):
                what = (
                    "no registered tool is in namespace"
                    if pattern.endswith(".*")
                    else ("no tool is registered as")
                )
                problems.append(
                    f"agents[{index}].tools[{position}]: {what} {pattern!r} "
                    f"(tenant {agent.tenant}, profile {agent.profile})"
                )
        for pattern in agent.rate_limits:
            if pattern.endswith(".*") and not any(pattern_matches(pattern, n) for n in names):
                problems.append(
                    f"agents[{index}].rate_limits: no registered tool is in namespace {pattern!r}"
                )
    return problems
