"""The provider payloads of ``/openapi.json``: the main fields each adapter reads.

Described by hand, as the adapters read them field by field; every object is open, since
providers keep adding fields.
"""

from __future__ import annotations

from typing import Any

from channels.whatsapp import inbound as whatsapp_inbound

Schema = dict[str, Any]


def _open(properties: dict[str, Schema], *required: str) -> Schema:
    """An object with at least ``required``: a provider's payload, which gains fields over time."""
    return {"type": "object", "properties": properties, "required": list(required)}


def _list(item: Schema) -> Schema:
    return {"type": "array", "items": item}


# The main fields of each provider's documented payload: what the adapters read. Laid out by
# hand, one object per line where it fits, since the formatter's one-field-a-line would triple
# the length of what is a table.
# fmt: off
_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_BOOL: Schema = {"type": "boolean"}
_OBJECT: Schema = {"type": "object"}
_STR_OR_NULL: Schema = {"type": ["string", "null"]}

_WHATSAPP_MESSAGE = _open(
    {"from": _STR, "id": _STR, "timestamp": _STR, "type": _STR,
     "text": _open({"body": _STR}, "body"), "context": _open({"id": _STR})},
    "from", "id", "type")
_WHATSAPP_STATUS = _open(
    {"id": _STR, "status": _STR, "timestamp": _STR, "recipient_id": _STR,
     "errors": _list(_open({"code": {"type": ["integer", "string"]}, "title": _STR}))},
    "id", "status")
_WHATSAPP_VALUE = _open(
    {"messaging_product": _STR,
     "metadata": _open({"display_phone_number": _STR, "phone_number_id": _STR}),
     "contacts": _list(_open({"wa_id": _STR, "profile": _open({"name": _STR})})),
     "messages": _list(_WHATSAPP_MESSAGE), "statuses": _list(_WHATSAPP_STATUS)})
_WHATSAPP_CHANGE = _open({"field": _STR, "value": _WHATSAPP_VALUE}, "field", "value")

_TELEGRAM_USER = _open(
    {"id": _INT, "is_bot": _BOOL, "first_name": _STR, "last_name": _STR, "username": _STR},
    "id", "first_name")
_TELEGRAM_CHAT = _open({"id": _INT, "type": _STR, "title": _STR, "username": _STR}, "id", "type")
_TELEGRAM_MESSAGE = _open(
    {"message_id": _INT, "date": _INT, "chat": _TELEGRAM_CHAT, "from": _TELEGRAM_USER,
     "text": _STR, "caption": _STR, "reply_to_message": _OBJECT},
    "message_id", "date", "chat")
_TELEGRAM_CALLBACK = _open(
    {"id": _STR, "from": _TELEGRAM_USER, "data": _STR, "message": _OBJECT}, "id", "from")
_TELEGRAM_REACTION = _open(
    {"chat": _TELEGRAM_CHAT, "message_id": _INT, "date": _INT,
     "new_reaction": _list(_OBJECT), "old_reaction": _list(_OBJECT)},
    "chat", "message_id")

_CHATWOOT_EVENT = _open(
    {"event": {"type": "string", "examples": ["message_created"]}, "id": _INT,
     "content": _STR_OR_NULL, "content_type": _STR, "private": _BOOL,
     "message_type": {"type": ["string", "integer"], "description": "incoming (0): a contact."},
     "created_at": {"type": ["string", "integer"], "description": "ISO 8601 or Unix seconds."},
     "sender": _open({"id": _INT, "name": _STR, "phone_number": _STR_OR_NULL, "type": _STR}),
     "conversation": _open({"id": _INT, "display_id": _INT}),
     "content_attributes": _OBJECT,
     "attachments": _list(_open({"file_type": _STR, "data_url": _STR}))},
    "event")

_TWILIO_FIELDS = (
    "MessageSid", "AccountSid", "From", "To", "Body", "NumMedia", "MediaUrl0",
    "MediaContentType0", "ProfileName", "WaId", "Latitude", "Longitude", "ButtonPayload",
    "ButtonText", "ListId", "ListTitle", "OriginalRepliedMessageSid", "MessageStatus",
    "ErrorCode", "ErrorMessage",
)
# fmt: on

JSON_BODIES: dict[str, Schema] = {
    "WhatsAppWebhook": _open(
        {
            "object": {"const": whatsapp_inbound.WEBHOOK_OBJECT},
            "entry": _list(_open({"id": _STR, "changes": _list(_WHATSAPP_CHANGE)}, "changes")),
        },
        "object",
        "entry",
    ),
    "TelegramUpdate": _open(
        {
            "update_id": _INT,
            "message": _TELEGRAM_MESSAGE,
            "edited_message": _TELEGRAM_MESSAGE,
            "channel_post": _TELEGRAM_MESSAGE,
            "callback_query": _TELEGRAM_CALLBACK,
            "message_reaction": _TELEGRAM_REACTION,
        },
        "update_id",
    ),
    "ChatwootEvent": _CHATWOOT_EVENT,
}
PROVIDER_BODIES: dict[str, Schema] = {
    **JSON_BODIES,
    "TwilioForm": {
        "type": "object",
        "properties": dict.fromkeys(_TWILIO_FIELDS, _STR),
        "required": ["MessageSid", "AccountSid", "From", "To"],
        # Twilio adds fields by channel and feature; each is one string.
        "additionalProperties": _STR,
    },
}
