"""What a channel adapter receives from the ingress, and what it hands back.

An inbound adapter is built once per configured channel (secrets already resolved). For each
webhook the ingress calls ``verify`` on the raw request, then ``parse``; it never looks inside
the provider's payload itself. Everything the adapter returns becomes exactly one event:
``InboundMessage`` → ``inbox.message.received``, ``InboundStatus`` →
``delivery.status.updated``, ``InboundRelease`` → ``conversation.handoff.released``, each
appended atomically with its ``dedup_key`` claimed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from events.types import DeliveryError, InboundContent
from events.types.common import Provider
from events.types.delivery import DeliveryStatus
from events.types.inbox import ContactIdentity
from libs.errors import AtendeError

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A webhook as it arrived: the raw body, before anything parsed it.

    ``url`` is the public URL the provider called (the channel's configured ``public_url``
    behind a proxy, with the query string), which is what signatures such as Twilio's cover.
    ``headers`` is case-insensitive. ``form`` holds the decoded body of a form-encoded
    request (Twilio), in order, repeated keys kept.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    content_type: str
    received_at: datetime
    form: Sequence[tuple[str, str]] = ()


class WebhookRejected(AtendeError):
    """Base of what an adapter raises to refuse a webhook; nothing is published."""


class SignatureInvalid(WebhookRejected):
    """Authentication failed (answered 401). ``check`` names the header or rule that failed.

    The message says what was wrong, e.g. "X-Hub-Signature-256 does not match the app
    secret" or "X-Chatwoot-Timestamp is 412 s old; at most 300 s are accepted".
    """

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


class PayloadInvalid(WebhookRejected):
    """The body is malformed or lacks a required field (answered 400).

    ``field`` is the dotted path of what is wrong, e.g. ``entry[0].changes[0].value``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A contact's message, normalized.

    ``conversation_key`` identifies the conversation within the channel (the WhatsApp
    ``wa_id``, the Telegram chat id, the Chatwoot conversation id, …); the ingress prefixes the
    channel id. ``dedup_key`` is what makes a repeated webhook a duplicate: the provider's
    message id (WhatsApp ``wamid``, Twilio ``MessageSid``, Chatwoot ``message_created:{id}``),
    or its update id where that is what the provider repeats (Telegram ``update_id``). It is
    always read from what the signature (or secret) authenticates, never from an unsigned
    header, so a captured webhook replayed with other headers stays a duplicate.
    """

    conversation_key: str
    dedup_key: str
    provider_message_id: str
    contact: ContactIdentity
    message: InboundContent
    reply_to: str | None = None
    provider_timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboundStatus:
    """A status callback for a message we sent.

    ``dedup_key`` distinguishes one status of one message from a repeat of it, e.g.
    ``"{wamid}:delivered"``.
    """

    dedup_key: str
    provider_message_id: str
    status: DeliveryStatus
    conversation_key: str | None = None
    error: DeliveryError | None = None
    provider_timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboundRelease:
    """The provider's people are done with a conversation (a Chatwoot agent resolved it): it
    goes back to the AI.

    ``status`` is the provider's word for it (``resolved``); ``dedup_key`` names this one
    change, from signed content, e.g. ``"resolved:{conversation}:{updated_at}"``.
    """

    conversation_key: str
    dedup_key: str
    status: str
    provider_timestamp: datetime | None = None


Inbound = InboundMessage | InboundStatus | InboundRelease


class InboundAdapter(Protocol):
    """Verifies and normalizes one channel's webhooks; pure (no I/O but a log line for what it
    skips), fast, never crashes.

    Anything wrong with a request raises ``SignatureInvalid`` or ``PayloadInvalid`` with a
    sentence naming what; any other exception is a bug.
    """

    @property
    def provider(self) -> Provider:
        """The kind of provider this adapter speaks."""
        ...

    def verify(self, request: WebhookRequest) -> None:
        """Raise ``SignatureInvalid`` unless the request is authentic (constant-time checks)."""
        ...

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        """Return one item per message or status in the webhook (possibly none)."""
        ...
