"""Chatwoot webhooks: verify the signature and normalize a contact's new message.

Verification: a Chatwoot webhook (account webhook, API-inbox callback or agent bot) created
with a secret is signed with HMAC-SHA256 over ``"{timestamp}.{raw body}"``; the headers are
``X-Chatwoot-Signature: sha256=<hex>`` and ``X-Chatwoot-Timestamp`` (Unix seconds). Both are
required, since the timestamp is part of what is signed; a timestamp more than 300 s away from
our clock, in either direction, is refused as a possible replay. ``X-Chatwoot-Delivery`` (the
delivery's id) is not signed, so nothing here reads it.

Normalization: only ``message_created`` for an ``incoming`` message that is not a private
note is a customer message. A conversation an agent resolved (``conversation_status_changed``
to ``resolved``, or an agent bot's ``conversation_resolved``) goes back to the AI
(``inbound_status``). Every other event (outgoing and activity messages, our own replies
echoed back, other statuses, ``message_updated``…) yields nothing, which the ingress answers
with 200. The text (``content``) becomes ``InboundText``; each
attachment becomes its own item (``image``/``audio``/``video``/``file`` → ``InboundMedia``
with the ``data_url``, ``location`` → ``InboundLocation``, any other type kept as
``InboundUnsupported``), the text riding as the first media's caption when it fits.

Keys: the conversation is the conversation's ``display_id`` (the number Chatwoot's API uses
in its paths, sent as ``id``); the dedup key is the event and the message id from the signed
body, ``message_created:{id}``. It is never the delivery header: within the replay window, a
captured webhook sent again with a fresh delivery id would otherwise be a new event. The event
name keeps apart the events Chatwoot sends about one message (``message_updated`` has the same
id). When one message yields several items each gets a ``:{index}`` suffix on both its dedup
key and its provider message id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from channels.chatwoot.inbound_content import attachment_content, sender_identity
from channels.chatwoot.inbound_status import STATUS_EVENTS, release
from channels.inbound import Inbound, InboundMessage, PayloadInvalid, WebhookRequest
from channels.inbound_json import JsonObject, decode_object, utc_from_unix, validated
from channels.timestamped_hmac import TimestampedHmac, utc_now
from events.types import InboundContent, InboundMedia, InboundText, InboundUnsupported
from events.types.common import CAPTION_MAX_CHARS, Provider

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"

_MESSAGE_CREATED = "message_created"


class ChatwootInbound:
    """Inbound adapter of one Chatwoot webhook, built with its secret."""

    provider: Provider = "chatwoot"

    def __init__(self, secret: str, now: Callable[[], datetime] = utc_now) -> None:
        if not secret:
            raise ValueError("a Chatwoot channel needs a non-empty webhook secret")
        self._signature = TimestampedHmac(
            secret=secret.encode("utf-8"),
            signature_header=SIGNATURE_HEADER,
            timestamp_header=TIMESTAMP_HEADER,
            key_label="the webhook's secret",
            now=now,
        )

    def verify(self, request: WebhookRequest) -> None:
        """Check the signature over timestamp and body, and the timestamp's age."""
        self._signature.verify(request)

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        """Return one item per part of an incoming message, a release for a resolved
        conversation; nothing for any other event."""
        event = decode_object(request.body)
        if event.string("event") in STATUS_EVENTS:
            return list(release(event))
        if event.string("event") != _MESSAGE_CREATED or not _from_contact(event):
            return []
        message_id = event.identifier("id")
        conversation = event.object("conversation")
        conversation_key = conversation.optional_identifier(
            "display_id"
        ) or conversation.identifier("id")
        contact = sender_identity(event.object("sender"))
        attributes = event.optional_object("content_attributes")
        reply_to = attributes.optional_identifier("in_reply_to") if attributes else None
        timestamp = _created_at(event)
        contents = _contents(event)
        base_key = f"{_MESSAGE_CREATED}:{message_id}"
        return [
            InboundMessage(
                conversation_key=conversation_key,
                dedup_key=base_key if len(contents) == 1 else f"{base_key}:{index}",
                provider_message_id=message_id if len(contents) == 1 else f"{message_id}:{index}",
                contact=contact,
                message=content,
                reply_to=reply_to,
                provider_timestamp=timestamp,
            )
            for index, content in enumerate(contents)
        ]


def _from_contact(event: JsonObject) -> bool:
    """Whether the message is a contact's: ``incoming`` (0 in older payloads), not private."""
    kind = event.get("message_type")
    incoming = kind == "incoming" or (type(kind) is int and kind == 0)
    return incoming and not event.optional_boolean("private")


def _contents(event: JsonObject) -> list[InboundContent]:
    """The message's parts: its attachments, the text as the first media's caption or alone."""
    text = event.optional_string("content") or None
    items = [attachment_content(attachment) for attachment in event.objects("attachments")]
    media_at = next((i for i, item in enumerate(items) if isinstance(item, InboundMedia)), None)
    if text is not None and media_at is not None and len(text) <= CAPTION_MAX_CHARS:
        items[media_at] = items[media_at].model_copy(update={"caption": text})
    elif text is not None:
        items.insert(0, validated(event.at("content"), lambda: InboundText(text=text)))
    if not items:
        # An incoming message with neither text nor attachment (a form, a CSAT answer…).
        kind = (event.optional_string("content_type") or "empty")[:64]
        items.append(
            validated("body", lambda: InboundUnsupported(provider_type=kind, raw=event.as_json()))
        )
    return items


def _created_at(event: JsonObject) -> datetime | None:
    """``created_at``: ISO 8601 in webhooks, Unix seconds in some older payloads."""
    value = event.get("created_at")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return utc_from_unix(value, "created_at")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            # Rails writes UTC; a value without an offset is read as UTC rather than refused.
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # the sentence below says what was expected
    raise PayloadInvalid("created_at", "created_at must be an ISO 8601 time or Unix seconds")
