"""The WhatsApp Cloud API webhook in ``/openapi.json``: the fields the adapter reads."""

from __future__ import annotations

from channels.payload_schema import STR, Schema, list_of, open_object
from channels.whatsapp.inbound import WEBHOOK_OBJECT

# Laid out by hand, one object per line where it fits, since the formatter's one-field-a-line
# would triple the length of what is a table.
# fmt: off
_WHATSAPP_MESSAGE = open_object(
    {"from": STR, "id": STR, "timestamp": STR, "type": STR,
     "text": open_object({"body": STR}, "body"), "context": open_object({"id": STR})},
    "from", "id", "type")
_WHATSAPP_STATUS = open_object(
    {"id": STR, "status": STR, "timestamp": STR, "recipient_id": STR,
     "errors": list_of(open_object({"code": {"type": ["integer", "string"]}, "title": STR}))},
    "id", "status")
_WHATSAPP_VALUE = open_object(
    {"messaging_product": STR,
     "metadata": open_object({"display_phone_number": STR, "phone_number_id": STR}),
     "contacts": list_of(open_object({"wa_id": STR, "profile": open_object({"name": STR})})),
     "messages": list_of(_WHATSAPP_MESSAGE), "statuses": list_of(_WHATSAPP_STATUS)})
_WHATSAPP_CHANGE = open_object({"field": STR, "value": _WHATSAPP_VALUE}, "field", "value")
# fmt: on

WHATSAPP_WEBHOOK: Schema = open_object(
    {
        "object": {"const": WEBHOOK_OBJECT},
        "entry": list_of(open_object({"id": STR, "changes": list_of(_WHATSAPP_CHANGE)}, "changes")),
    },
    "object",
    "entry",
)
