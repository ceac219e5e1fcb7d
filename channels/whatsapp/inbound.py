"""WhatsApp Cloud API webhooks: signature check, Meta's subscription handshake, normalization.

A webhook is an object ``whatsapp_business_account`` holding entries, each holding changes;
a change of field ``messages`` carries ``value.messages[]`` (what contacts sent),
``value.statuses[]`` (what happened to what we sent) and ``value.contacts[]`` (the senders'
profile names). Every message and every status becomes one item, however they are spread
over entries and changes. Changes of other fields (template reviews, account updates, …)
are not conversation traffic and yield nothing.

Each change names the business number it is about (``value.metadata.phone_number_id``). A
channel with a configured ``phone_number_id`` takes only that number's changes: the app
secret signs the webhooks of every number of the app, so the signature alone does not say
which channel a change belongs to.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from typing import Literal

import structlog
from pydantic import ValidationError

from channels.inbound import (
    Inbound,
    InboundMessage,
    InboundStatus,
    PayloadInvalid,
    SignatureInvalid,
    WebhookRequest,
)
from channels.whatsapp.inbound_content import message_content
from channels.whatsapp.webhook_json import JsonNode, decode_body, invalid_model
from events.types import ContactIdentity, DeliveryError
from events.types.delivery import DeliveryStatus

SIGNATURE_HEADER = "X-Hub-Signature-256"
WEBHOOK_OBJECT = "whatsapp_business_account"

_SIGNATURE = re.compile(r"^sha256=([0-9a-fA-F]{64})$")
_WA_ID_PHONE = re.compile(r"^[1-9][0-9]{1,14}$")
_STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}
_ERROR_TITLE_MAX_CHARS = 1_024

_log = structlog.get_logger("atende.ingress")


class WhatsAppInbound:
    """Inbound adapter of one WhatsApp Cloud API channel (one Meta app secret).

    With ``phone_number_id`` (the channel's number in the Cloud API), changes about the app's
    other numbers are skipped; without it, every number of the app is taken.
    """

    provider: Literal["whatsapp"] = "whatsapp"

    def __init__(self, app_secret: str, phone_number_id: str | None = None) -> None:
        if not app_secret:
            raise ValueError("the WhatsApp app secret is empty; set it in the channel config")
        self._app_secret = app_secret.encode()
        self._phone_number_id = phone_number_id

    def verify(self, request: WebhookRequest) -> None:
        """Check ``X-Hub-Signature-256``: HMAC-SHA256 of the raw body with the app secret."""
        header = request.headers.get(SIGNATURE_HEADER)
        if header is None:
            raise SignatureInvalid(SIGNATURE_HEADER, f"{SIGNATURE_HEADER} is missing")
        match = _SIGNATURE.match(header.strip())
        if match is None:
            raise SignatureInvalid(
                SIGNATURE_HEADER,
                f"{SIGNATURE_HEADER} is malformed; expected 'sha256=' and 64 hex digits",
            )
        expected = hmac.new(self._app_secret, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), match.group(1).lower().encode()):
            raise SignatureInvalid(
                SIGNATURE_HEADER, f"{SIGNATURE_HEADER} does not match the app secret"
            )

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        """One item per message and per status in the webhook, in the order they came."""
        root = decode_body(request.body)
        kind = root.opt_text("object")
        if kind != WEBHOOK_OBJECT:
            raise PayloadInvalid(
                "object", f"object is {kind!r}; a WhatsApp webhook has {WEBHOOK_OBJECT!r}"
            )
        items: list[Inbound] = []
        for entry in root.items("entry", required=True):
            for change in entry.items("changes", required=True):
                if change.text("field") != "messages":
                    continue
                value = change.child("value")
                if not self._for_another_number(value):
                    items.extend(_change_items(value))
        return items

    def _for_another_number(self, value: JsonNode) -> bool:
        """Whether the change is about another number of the app: then it is logged, skipped.

        Skipped rather than refused: Meta sends one webhook per app subscription and may batch
        the changes of several of the app's numbers in it. A refusal would have Meta retry the
        whole webhook, this channel's own changes with it, for days; crediting the changes to
        this channel would let any number of the app write into its conversations. The log
        line tells the operator which number's webhooks arrive here.
        """
        if self._phone_number_id is None:
            return False
        metadata = value.child("metadata")
        number = metadata.ident("phone_number_id")
        if number == self._phone_number_id:
            return False
        _log.warning(
            "whatsapp change of another number skipped",
            field=metadata.field_path("phone_number_id"),
            phone_number_id=number,
            channel_phone_number_id=self._phone_number_id,
        )
        return True


def verify_subscription(query: Mapping[str, str], verify_token: str) -> str:
    """Answer Meta's GET handshake: return ``hub.challenge`` when the verify token matches."""
    for name in ("hub.mode", "hub.verify_token", "hub.challenge"):
        if not query.get(name):
            raise PayloadInvalid(name, f"{name} is missing from the query string")
    if query["hub.mode"] != "subscribe":
        raise PayloadInvalid("hub.mode", f"hub.mode is {query['hub.mode']!r}, not 'subscribe'")
    given = query["hub.verify_token"].encode()
    if not verify_token or not hmac.compare_digest(given, verify_token.encode()):
        raise SignatureInvalid(
            "hub.verify_token", "hub.verify_token does not match the channel's verify token"
        )
    return query["hub.challenge"]


def _change_items(value: JsonNode) -> Iterator[Inbound]:
    names = _profile_names(value)
    for message in value.items("messages"):
        yield _message(message, names)
    for status in value.items("statuses"):
        item = _status(status)
        if item is not None:
            yield item


def _profile_names(value: JsonNode) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in value.items("contacts"):
        wa_id = contact.opt_text("wa_id")
        profile = contact.opt_child("profile")
        name = profile.opt_text("name") if profile else None
        if wa_id and name:
            names[wa_id] = name
    return names


def _message(message: JsonNode, names: Mapping[str, str]) -> InboundMessage:
    wamid = message.ident("id")
    sender = message.ident("from")
    content = message_content(message, message.text("type"))
    context = message.opt_child("context")
    try:
        contact = ContactIdentity(
            provider_user_id=sender,
            phone=f"+{sender}" if _WA_ID_PHONE.match(sender) else None,
            display_name=names.get(sender),
        )
    except ValidationError as error:
        raise invalid_model(message.field_path("from"), error) from None
    return InboundMessage(
        conversation_key=sender,
        dedup_key=wamid,
        provider_message_id=wamid,
        contact=contact,
        message=content,
        reply_to=context.opt_ident("id") if context else None,
        provider_timestamp=message.opt_unix_time("timestamp"),
    )


def _status(status: JsonNode) -> InboundStatus | None:
    wamid = status.ident("id")
    reported = status.text("status")
    normalized = _STATUSES.get(reported)
    if normalized is None:
        # Meta's other statuses ("deleted", "warning", …) have no place in the delivery
        # contract; they say nothing about whether a reply reached the contact.
        return None
    return InboundStatus(
        dedup_key=f"{wamid}:{normalized}",
        provider_message_id=wamid,
        status=normalized,
        conversation_key=status.opt_ident("recipient_id"),
        error=_status_error(status),
        provider_timestamp=status.opt_unix_time("timestamp"),
    )


def _status_error(status: JsonNode) -> DeliveryError | None:
    first = next(status.items("errors"), None)
    if first is None:
        return None
    code = first.opt_scalar_text("code")
    if not code:
        raise PayloadInvalid(first.field_path("code"), f"{first.field_path('code')} is missing")
    title = first.opt_text("title") or first.opt_text("message")
    data = first.opt_child("error_data")
    details = data.opt_text("details") if data else None
    if details and details != title:
        # The title is terse ("Re-engagement message"); the details say what to do.
        title = f"{title}: {details}" if title else details
    try:
        return DeliveryError(code=code, title=title[:_ERROR_TITLE_MAX_CHARS] if title else None)
    except ValidationError as error:
        raise invalid_model(first.path, error) from None
