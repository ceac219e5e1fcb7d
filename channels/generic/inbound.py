"""The generic JSON channel: atende's own webhook format, for any app.

An app posts ``POST /webhooks/generic/{channel_id}`` with ``Content-Type: application/json``.

Signature
---------
``X-Atende-Timestamp``
    The time of sending, in Unix seconds. More than 300 s away from atende's clock, either
    way, is refused (a replay, or a clock to fix).
``X-Atende-Signature``
    ``sha256=`` followed by the lowercase hex HMAC-SHA256, keyed with the channel's secret, of
    the timestamp, a dot and the raw body: ``HMAC(secret, f"{timestamp}.{body}")``.

Body
----
Unknown fields, wrong types (an id sent as a number) and NaN are refused with a 400 naming
the field, e.g. ``messages[0].sender.id``. At most 100 items (messages plus statuses)::

    {
      "messages": [
        {
          "id": "m-1001",                  # unique within the channel; a repeat is a duplicate
          "conversation_id": "c-42",        # the app's conversation (or user) id
          "sender": {"id": "u-7", "name": "Ana", "phone": "+5511999990000", "username": "ana"},
          "text": "Hi!",                   # exactly one content field, see below
          "reply_to": "m-1000",            # optional: the id of a quoted message
          "timestamp": "2024-05-01T12:00:00Z"  # optional: RFC 3339 with an offset
        }
      ],
      "statuses": [
        {"message_id": "r-9", "status": "failed", "conversation_id": "c-42",
         "error": {"code": "blocked", "title": "User blocked the app"},
         "timestamp": "2024-05-01T12:00:03Z"}
      ]
    }

Content fields (one per message):

- ``text``: a string;
- ``media``: ``{"kind": "image"|"audio"|"video"|"document"|"sticker"|"voice", "url",
  "mime_type"?, "caption"?, "filename"?, "size_bytes"?, "sha256"?}``;
- ``location``: ``{"latitude", "longitude", "name"?, "address"?}``;
- ``contacts``: ``[{"name", "phones"?: [...], "emails"?: [...], "organization"?}]``;
- ``interactive``: ``{"type": "button_reply"|"list_reply", "id", "title"?, "payload"?}``
  where ``id`` is the id atende gave the button or row;
- ``reaction``: ``{"message_id", "emoji"?}``; no emoji takes the reaction back;
- ``edit``: ``{"message_id", "text"}``.

A status is ``sent``, ``delivered``, ``read`` or ``failed`` for a message atende sent (its
``message_id`` is the id the app answered the send with); ``error`` only with ``failed``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import ValidationError

from channels.generic.webhook_model import GenericMessage, GenericStatus, GenericWebhook
from channels.inbound import (
    Inbound,
    InboundMessage,
    InboundStatus,
    PayloadInvalid,
    WebhookRequest,
)
from channels.inbound_json import field_path, others, problem
from channels.timestamped_hmac import TimestampedHmac, utc_now
from events.types import (
    ContactIdentity,
    DeliveryError,
    InboundContacts,
    InboundContent,
    InboundEdit,
    InboundInteractive,
    InboundLocation,
    InboundMedia,
    InboundReaction,
    InboundText,
    SharedContact,
    SharedPhone,
)
from events.types.common import Provider

SIGNATURE_HEADER = "X-Atende-Signature"
TIMESTAMP_HEADER = "X-Atende-Timestamp"


class GenericInbound:
    """Inbound adapter of one generic JSON channel, built with its shared secret."""

    provider: Provider = "generic"

    def __init__(self, secret: str, now: Callable[[], datetime] = utc_now) -> None:
        if not secret:
            raise ValueError("a generic channel needs a non-empty secret")
        self._signature = TimestampedHmac(
            secret=secret.encode("utf-8"),
            signature_header=SIGNATURE_HEADER,
            timestamp_header=TIMESTAMP_HEADER,
            key_label="the channel's secret",
            now=now,
        )

    def verify(self, request: WebhookRequest) -> None:
        """Check the signature over timestamp and body, and the timestamp's age."""
        self._signature.verify(request)

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        """Return the messages, then the statuses, in the order the app sent them."""
        try:
            webhook = GenericWebhook.model_validate_json(request.body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            field = field_path(errors[0]["loc"]) or "body"
            sentence = _sentence(errors[0]["type"], field, errors[0]["msg"])
            raise PayloadInvalid(field, sentence + others(len(errors))) from None
        items: list[Inbound] = [_message(message) for message in webhook.messages]
        items.extend(_status(status) for status in webhook.statuses)
        return items


def _sentence(error_type: str, field: str, message: str) -> str:
    if error_type == "missing":
        return f"{field} is missing"
    if error_type == "extra_forbidden":
        return f"{field} is not a field of the generic channel's format"
    if error_type == "json_invalid":
        return f"the body is not valid JSON: {problem(message.removeprefix('Invalid JSON: '))}"
    if error_type == "value_error":
        return f"{field}: {problem(message)}"
    return f"{field} is invalid: {problem(message)}"


def _message(message: GenericMessage) -> InboundMessage:
    sender = message.sender
    return InboundMessage(
        conversation_key=message.conversation_id,
        dedup_key=message.id,
        provider_message_id=message.id,
        contact=ContactIdentity(
            provider_user_id=sender.id,
            phone=sender.phone,
            display_name=sender.name,
            username=sender.username,
        ),
        message=_content(message),
        reply_to=message.reply_to,
        provider_timestamp=message.timestamp,
    )


def _content(message: GenericMessage) -> InboundContent:
    """The contract content of the one content field the model guarantees is set."""
    if message.text is not None:
        return InboundText(text=message.text)
    if message.media is not None:
        media = message.media
        return InboundMedia(
            media_kind=media.kind,
            url=media.url,
            mime_type=media.mime_type,
            caption=media.caption,
            filename=media.filename,
            size_bytes=media.size_bytes,
            sha256=media.sha256,
        )
    if message.location is not None:
        place = message.location
        return InboundLocation(
            latitude=place.latitude,
            longitude=place.longitude,
            name=place.name,
            address=place.address,
        )
    if message.contacts is not None:
        return InboundContacts(
            contacts=tuple(
                SharedContact(
                    name=card.name,
                    phones=tuple(SharedPhone(number=number) for number in card.phones),
                    emails=tuple(card.emails),
                    organization=card.organization,
                )
                for card in message.contacts
            )
        )
    if message.interactive is not None:
        tap = message.interactive
        return InboundInteractive(
            interaction=tap.type, reply_id=tap.id, title=tap.title, payload=tap.payload
        )
    if message.reaction is not None:
        reaction = message.reaction
        return InboundReaction(
            target_message_id=reaction.message_id,
            emoji=reaction.emoji,
            removed=reaction.emoji is None,
        )
    assert message.edit is not None  # the model admits exactly one content field
    return InboundEdit(target_message_id=message.edit.message_id, text=message.edit.text)


def _status(status: GenericStatus) -> InboundStatus:
    error = status.error
    return InboundStatus(
        dedup_key=f"{status.message_id}:{status.status}",
        provider_message_id=status.message_id,
        status=status.status,
        conversation_key=status.conversation_id,
        error=DeliveryError(code=error.code, title=error.title) if error else None,
        provider_timestamp=status.timestamp,
    )
