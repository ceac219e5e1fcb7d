"""``email.send``: a plain-text email through the deployment's SMTP server.

The Message-ID is derived from the tenant, turn and tool call, so a message sent again for
the same call carries the same id and the receiving side (and a human reading headers) can
recognize the resend; ``X-Atende-Tool-Call`` names the call in clear.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Literal, Self

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, model_validator

from libs.env_secret import EnvSecret
from tool_gateway.tool import (
    SENSITIVE,
    Tool,
    ToolArgumentsInvalid,
    ToolContext,
    ToolFailed,
    ToolUnavailable,
)

# ASCII addresses only: a single mailbox, no display name, no comments, nothing to inject.
EmailAddress = Annotated[
    str,
    Field(
        max_length=254,
        pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    ),
]
_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")


class EmailConfig(BaseModel):
    """The ``tools.email`` section: the SMTP server and what the agent may send."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.\-:\[\]]+$")
    port: int = Field(default=587, ge=1, le=65_535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(default=None, min_length=1)
    password: EnvSecret | None = None
    from_address: EmailAddress
    from_name: str | None = Field(default=None, max_length=100, pattern=r"^[^\r\n]*$")
    allowed_recipient_domains: list[str] | None = Field(
        default=None, description="Domains recipients must be in (exact match); none: any."
    )
    max_recipients: int = Field(default=5, ge=1, le=50)
    timeout_s: float = Field(default=10.0, gt=0, le=60)
    ca_file: Path | None = Field(
        default=None, description="CA bundle that signed the server's certificate, if private."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        for domain in self.allowed_recipient_domains or ():
            if not _DOMAIN.match(domain):
                raise ValueError(
                    f"allowed_recipient_domains: {domain!r} is not a lower-case domain"
                )
        return self


class SendEmailInput(BaseModel):
    """One plain-text email."""

    model_config = ConfigDict(extra="forbid")

    to: Annotated[list[EmailAddress], SENSITIVE] = Field(
        min_length=1, max_length=50, description="Recipients' email addresses."
    )
    subject: str = Field(
        min_length=1, max_length=200, pattern=r"^[^\r\n]*$", description="One-line subject."
    )
    text: str = Field(min_length=1, max_length=50_000, description="The body, plain text.")
    reply_to: Annotated[EmailAddress | None, SENSITIVE] = Field(
        default=None, description="Where replies should go, if not to the sender."
    )


class SendEmailOutput(BaseModel):
    """What the mail server accepted (or, in a dry run, what would have been sent)."""

    message_id: str
    accepted: int = Field(description="Recipients the server accepted.")
    refused: list[str] = Field(default_factory=list, description="Recipients it refused.")
    dry_run: bool = False
    subject: str


def email_config(context: ToolContext) -> EmailConfig:
    """The SMTP settings from the tools config; ``ToolUnavailable`` when there are none."""
    config = getattr(context.services.settings, "email", None)
    if not isinstance(config, EmailConfig):
        raise ToolUnavailable("email is not configured")
    return config


def message_id(context: ToolContext, sender: str) -> str:
    """The same id for every send of one tool call (tenant, turn, call), unique otherwise."""
    key = "\x00".join((context.tenant_id, context.turn_id, context.tool_call_id))
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<atende.{digest}@{sender.rsplit('@', 1)[1]}>"


def build_message(config: EmailConfig, context: ToolContext, email: SendEmailInput) -> EmailMessage:
    """The message as the SMTP server will receive it; refuses recipients the config forbids."""
    _check_recipients(config, email.to)
    try:
        return _message(config, context, email)
    except ValueError as exc:  # e.g. a line separator the field patterns do not catch
        raise ToolArgumentsInvalid(f"the email cannot be built: {exc}") from None


def _message(config: EmailConfig, context: ToolContext, email: SendEmailInput) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(display_name=config.from_name or "", addr_spec=config.from_address)
    message["To"] = ", ".join(email.to)
    message["Subject"] = email.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id(context, config.from_address)
    turn, call = (_NOT_PRINTABLE.sub("", part) for part in (context.turn_id, context.tool_call_id))
    message["X-Atende-Tool-Call"] = f"{turn} {call}"
    if email.reply_to is not None:
        message["Reply-To"] = email.reply_to
    message.set_content(email.text, charset="utf-8")
    return message


def _check_recipients(config: EmailConfig, recipients: list[str]) -> None:
    if len(recipients) > config.max_recipients:
        raise ToolArgumentsInvalid(
            f"at most {config.max_recipients} recipients per email, got {len(recipients)}"
        )
    if config.allowed_recipient_domains is None:
        return
    allowed = set(config.allowed_recipient_domains)
    outside = sorted({r.rsplit("@", 1)[1].lower() for r in recipients} - allowed)
    if outside:
        raise ToolArgumentsInvalid(
            f"email may only go to {', '.join(sorted(allowed))}; not to {', '.join(outside)}"
        )


async def send_email(context: ToolContext, email: SendEmailInput) -> SendEmailOutput:
    """Send the email; map the server's refusals to what the agent can act on."""
    config = email_config(context)
    message = build_message(config, context, email)
    try:
        # aiosmtplib's timeout bounds each command; this bounds the whole conversation.
        async with asyncio.timeout(config.timeout_s):
            refused, _reply = await aiosmtplib.send(
                message,
                recipients=email.to,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password.reveal() if config.password is not None else None,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                cert_bundle=str(config.ca_file) if config.ca_file is not None else None,
                timeout=config.timeout_s,
            )
    except aiosmtplib.SMTPException as exc:
        raise _refusal(config, exc) from exc
    except OSError as exc:  # refused connections and the overall timeout
        raise _unreachable(config, exc) from exc
    return SendEmailOutput(
        message_id=str(message["Message-ID"]),
        accepted=len(email.to) - len(refused),
        refused=sorted(refused),
        subject=email.subject,
    )


def _refusal(config: EmailConfig, exc: aiosmtplib.SMTPException) -> ToolFailed | ToolUnavailable:
    """A permanent refusal of what we sent fails the call; anything else is the server's."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        answers = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if all(r.code >= 500 for r in exc.recipients):
            return ToolFailed(f"the mail server refused every recipient ({answers})")
        return ToolUnavailable(f"the mail server deferred the recipients ({answers})")
    if isinstance(exc, aiosmtplib.SMTPDataError) and exc.code >= 500:
        return ToolFailed(f"the mail server rejected the message: {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return ToolUnavailable(f"the mail server refused our credentials: {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return ToolUnavailable(f"the mail server answered {exc.code} {exc.message}")
    return _unreachable(config, exc)


def _unreachable(config: EmailConfig, exc: Exception) -> ToolUnavailable:
    detail = str(exc) or f"no answer within {config.timeout_s}s"
    return ToolUnavailable(
        f"the mail server {config.host}:{config.port} could not be reached: {detail}"
    )


async def simulate_email(context: ToolContext, email: SendEmailInput) -> SendEmailOutput:
    """What a dry run answers: the message that would be sent, with nothing sent."""
    config = email_config(context)
    message = build_message(config, context, email)
    return SendEmailOutput(
        message_id=str(message["Message-ID"]),
        accepted=len(email.to),
        dry_run=True,
        subject=email.subject,
    )


EMAIL_SEND = Tool(
    name="email.send",
    description=(
        "Send a plain-text email on behalf of the business, e.g. a quote or a summary the "
        "customer asked for. Only send what the customer agreed to receive."
    ),
    input_model=SendEmailInput,
    output_model=SendEmailOutput,
    run=send_email,
    simulate=simulate_email,
    writes=True,
    timeout_s=65.0,  # above the largest SMTP timeout the config allows, so its error wins
    external=True,
)
