"""The Telegram Bot API update in ``/openapi.json``: the fields the adapter reads."""

from __future__ import annotations

from channels.payload_schema import BOOL, INT, OBJECT, STR, Schema, list_of, open_object

# fmt: off
_TELEGRAM_USER = open_object(
    {"id": INT, "is_bot": BOOL, "first_name": STR, "last_name": STR, "username": STR},
    "id", "first_name")
_TELEGRAM_CHAT = open_object({"id": INT, "type": STR, "title": STR, "username": STR}, "id", "type")
_TELEGRAM_MESSAGE = open_object(
    {"message_id": INT, "date": INT, "chat": _TELEGRAM_CHAT, "from": _TELEGRAM_USER,
     "text": STR, "caption": STR, "reply_to_message": OBJECT},
    "message_id", "date", "chat")
_TELEGRAM_CALLBACK = open_object(
    {"id": STR, "from": _TELEGRAM_USER, "data": STR, "message": OBJECT}, "id", "from")
_TELEGRAM_REACTION = open_object(
    {"chat": _TELEGRAM_CHAT, "message_id": INT, "date": INT,
     "new_reaction": list_of(OBJECT), "old_reaction": list_of(OBJECT)},
    "chat", "message_id")
# fmt: on

TELEGRAM_UPDATE: Schema = open_object(
    {
        "update_id": INT,
        "message": _TELEGRAM_MESSAGE,
        "edited_message": _TELEGRAM_MESSAGE,
        "channel_post": _TELEGRAM_MESSAGE,
        "callback_query": _TELEGRAM_CALLBACK,
        "message_reaction": _TELEGRAM_REACTION,
    },
    "update_id",
)
