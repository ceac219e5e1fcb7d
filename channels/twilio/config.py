"""SMS or WhatsApp through Twilio, as the config file declares it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, HttpUrl

from channels.base_config import ChannelBase, RecipientPace, StrictModel
from channels.send_pacing import WHATSAPP_PAIR_RATE_LIMIT
from channels.sending_fields import lacking
from channels.twilio.outbound import TwilioConfig
from libs.env_secret import EnvSecret

TemplateName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=512)]
ContentSid = Annotated[str, Field(pattern=r"^HX[0-9a-fA-F]{32}$")]


SMS_PACE = RecipientPace(interval_ms=1_000, burst=3)


class TwilioSecrets(StrictModel):
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

    def recipient_pace(self) -> RecipientPace | None:
        """WhatsApp's pair rate limit when the channel sends WhatsApp; for SMS, one message a
        second (what a long code sends, Twilio queueing what exceeds a number's MPS)."""
        if self.sending.recipient_pace is not None:
            return super().recipient_pace()
        whatsapp = self.whatsapp or (self.sender or "").startswith("whatsapp:")
        return WHATSAPP_PAIR_RATE_LIMIT if whatsapp else SMS_PACE


def account_id(channel: TwilioChannel) -> str | None:
    """The number (or messaging service) replies are sent from, when the config gives it."""
    return channel.sender


def sending_config(channel: TwilioChannel) -> TwilioConfig:
    """The sender's settings of ``channel``; ``ChannelCannotSend`` names what is missing."""
    account_sid, sender = channel.account_sid, channel.sender
    if account_sid is None or sender is None:
        raise lacking(
            channel,
            ("account_sid", account_sid, "the account SID (AC…)"),
            ("sender", sender, "a From number, whatsapp:+… address or messaging service SID"),
        )
    callback = channel.status_callback_url or channel.public_url
    return TwilioConfig(
        channel_id=channel.id,
        account_sid=account_sid,
        auth_token=channel.secrets.auth_token.reveal(),
        sender=sender,
        whatsapp=channel.whatsapp,
        status_callback_url=str(callback) if callback is not None else None,
        base_url=str(channel.api_base_url),
        content_sids=dict(channel.content_sids),
    )
