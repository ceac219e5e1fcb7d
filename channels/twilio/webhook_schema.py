"""The Twilio webhook form in ``/openapi.json``: the fields the adapter reads."""

from __future__ import annotations

from channels.payload_schema import STR, Schema

# fmt: off
_TWILIO_FIELDS = (
    "MessageSid", "AccountSid", "From", "To", "Body", "NumMedia", "MediaUrl0",
    "MediaContentType0", "ProfileName", "WaId", "Latitude", "Longitude", "ButtonPayload",
    "ButtonText", "ListId", "ListTitle", "OriginalRepliedMessageSid", "MessageStatus",
    "ErrorCode", "ErrorMessage",
)
# fmt: on

TWILIO_FORM: Schema = {
    "type": "object",
    "properties": dict.fromkeys(_TWILIO_FIELDS, STR),
    "required": ["MessageSid", "AccountSid", "From", "To"],
    # Twilio adds fields by channel and feature; each is one string.
    "additionalProperties": STR,
}
