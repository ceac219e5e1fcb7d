"""Tenants and their channels, as declared in the config file (``ATENDE_CONFIG``).

Secrets are never written in the file: each is a reference ``{env: NAME}`` resolved from the
environment when the file is loaded, and a missing variable is an error naming it.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from limits import parse as parse_rate_limit
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

from events.types.common import ChannelId
from libs.env_secret import EnvSecret

MiB = 1024 * 1024
WHATSAPP_MAX_BODY_BYTES = 3 * 1000 * 1000  # what Meta documents as its largest webhook

TemplateName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=512)]
ContentSid = Annotated[str, Field(pattern=r"^HX[0-9a-fA-F]{32}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SendingPolicy(_Strict):
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

    @model_validator(mode="after")
    def _backoff_bounds(self) -> Self:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must be >= backoff_initial_s "
                f"({self.backoff_initial_s})"
            )
        return self


class ChannelBase(_Strict):
    """What every channel has, whatever its provider."""

    id: ChannelId
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

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        try:
            parse_rate_limit(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '50/second'") from None
        return value


class WhatsAppSecrets(_Strict):
    """Meta app secret (signatures), verify token (handshake), access token (sending)."""

    app_secret: EnvSecret
    verify_token: EnvSecret
    access_token: EnvSecret | None = None


class WhatsAppChannel(ChannelBase):
    """A WhatsApp Business number on the Cloud API."""

    provider: Literal["whatsapp"]
    secrets: WhatsAppSecrets
    phone_number_id: str | None = Field(
        default=None,
        pattern=r"^[0-9]{5,32}$",
        description="The number's id in the Cloud API (not the phone number); needed to send. "
        "Webhook changes about the app's other numbers are skipped when set.",
    )
    api_base_url: HttpUrl = HttpUrl("https://graph.facebook.com")
    api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    list_button_label: str = Field(
        default="Options",
        min_length=1,
        max_length=20,
        description="Label of the button that opens a list (replies with over three choices).",
    )


class TwilioSecrets(_Strict):
    """Twilio auth token (signatures and sending)."""

    auth_token: EnvSecret


class TwilioChannel(ChannelBase):
    """SMS or WhatsApp through Twilio."""

    provider: Literal["twilio"]
    secrets: TwilioSecrets
    account_sid: str | None = Field(
        default=None, pattern=r"^AC[0-9a-fA-F]{32}$", description="Account SID; needed to send."
    )
    sender: str | None = Field(
        default=None,
        description="From address (+1555…, whatsapp:+1555…) or a messaging service SID (MG…).",
    )
    whatsapp: bool = Field(
        default=False,
        description="The messaging service sends WhatsApp (a whatsapp: sender implies it).",
    )
    status_callback_url: HttpUrl | None = Field(
        default=None,
        description="Where Twilio posts the statuses of sent messages; defaults to public_url "
        "(this channel's webhook, which takes statuses too); none when neither is set.",
    )
    content_sids: dict[TemplateName, ContentSid] = Field(
        default_factory=dict,
        description="Content SID (HX…) approved for each template name; a template without "
        "one cannot be sent.",
    )
    api_base_url: HttpUrl = HttpUrl("https://api.twilio.com")


class TelegramSecrets(_Strict):
    """Webhook secret token (header check) and bot token (sending)."""

    secret_token: EnvSecret
    bot_token: EnvSecret | None = None


class TelegramChannel(ChannelBase):
    """A Telegram bot."""

    provider: Literal["telegram"]
    secrets: TelegramSecrets
    api_base_url: HttpUrl = HttpUrl("https://api.telegram.org")


class ChatwootSecrets(_Strict):
    """Webhook signing secret and API access token."""

    webhook_secret: EnvSecret
    api_access_token: EnvSecret | None = None


class ChatwootChannel(ChannelBase):
    """A Chatwoot inbox (agent bot webhooks)."""

    provider: Literal["chatwoot"]
    secrets: ChatwootSecrets
    account_id: int | None = Field(
        default=None, ge=1, description="Chatwoot account of the inbox; needed to send."
    )
    api_base_url: HttpUrl | None = Field(
        default=None, description="The Chatwoot installation, e.g. https://app.chatwoot.com."
    )


class GenericSecrets(_Strict):
    """Shared secret that signs both directions."""

    signing_secret: EnvSecret


class GenericChannel(ChannelBase):
    """Any app speaking atende's generic JSON webhook format."""

    provider: Literal["generic"]
    secrets: GenericSecrets
    callback_url: HttpUrl | None = Field(
        default=None, description="Where the app receives replies (signed POSTs)."
    )


Channel = Annotated[
    WhatsAppChannel | TwilioChannel | TelegramChannel | ChatwootChannel | GenericChannel,
    Field(discriminator="provider"),
]


class TenantConfig(_Strict):
    """A company using atende, and the channels its customers write to."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str | None = None
    channels: list[Channel] = Field(default_factory=list)


class ChannelsConfig(_Strict):
    """The tenants section of the config file; channel ids are unique across tenants."""

    tenants: list[TenantConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        tenants = [tenant.id for tenant in self.tenants]
        if duplicated := sorted({t for t in tenants if tenants.count(t) > 1}):
            raise ValueError(f"tenant ids must be unique; repeated: {', '.join(duplicated)}")
        channels = [channel.id for tenant in self.tenants for channel in tenant.channels]
        if duplicated := sorted({c for c in channels if channels.count(c) > 1}):
            raise ValueError(
                f"channel ids must be unique across tenants (they are in webhook URLs); "
                f"repeated: {', '.join(duplicated)}"
            )
        return self

    def channel(self, provider: str, channel_id: str) -> tuple[TenantConfig, Channel] | None:
        """The tenant and channel a webhook URL names, if configured."""
        for tenant in self.tenants:
            for channel in tenant.channels:
                if channel.id == channel_id and channel.provider == provider:
                    return tenant, channel
        return None
