"""The Chatwoot webhook event in ``/openapi.json``: the fields the adapter reads (a message's,
and a conversation's status)."""

from __future__ import annotations

from channels.payload_schema import (
    BOOL,
    INT,
    OBJECT,
    STR,
    STR_OR_NULL,
    Schema,
    list_of,
    open_object,
)

# fmt: off
CHATWOOT_EVENT: Schema = open_object(
    {"event": {"type": "string", "examples": ["message_created"]}, "id": INT,
     "content": STR_OR_NULL, "content_type": STR, "private": BOOL,
     "message_type": {"type": ["string", "integer"], "description": "incoming (0): a contact."},
     "created_at": {"type": ["string", "integer"], "description": "ISO 8601 or Unix seconds."},
     "sender": open_object({"id": INT, "name": STR, "phone_number": STR_OR_NULL, "type": STR}),
     "conversation": open_object({"id": INT, "display_id": INT}),
     "content_attributes": OBJECT,
     "attachments": list_of(open_object({"file_type": STR, "data_url": STR})),
     "status": {"type": "string", "description": "A conversation's: resolved hands it back."},
     "updated_at": {"type": "number", "description": "A conversation's last change, Unix s."}},
    "event")
# fmt: on
