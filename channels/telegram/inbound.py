"""Telegram Bot API webhooks: verify the secret token and normalize one ``Update``.

Verification: ``setWebhook`` is called with ``secret_token`` set to the channel's secret, and
Telegram sends it back in ``X-Telegram-Bot-Api-Secret-Token`` on every update.

One update carries one event (https://core.telegram.org/bots/api#update):

- ``message``: text, photo (the largest size), document, animation, audio, voice, video,
  video note, sticker, location, venue, contact; ``caption`` and ``reply_to_message`` kept;
- ``edited_message``: ``InboundEdit`` of the text (or caption); other edits, such as a live
  location moving, are kept as ``InboundUnsupported``;
- ``callback_query``: ``InboundInteractive`` whose ``reply_id`` and ``payload`` are the
  button's ``callback_data``, the button's label as ``title``, the message that carried
  the keyboard as ``reply_to``;
- ``message_reaction``: ``InboundReaction`` for the emoji added (or removed);
- anything else, ``channel_post`` included (a channel has no customer to answer, yet the post
  is recorded), becomes ``InboundUnsupported`` with the update's part as it came.

Keys: the conversation is the chat id (a private chat's id is the user's id); the dedup key
is ``update_id``, because Telegram repeats an update, not a message; a message's provider id
is ``"{chat_id}:{message_id}"`` since message ids are only unique within a chat.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from channels.inbound import (
    Inbound,
    InboundMessage,
    PayloadInvalid,
    SignatureInvalid,
    WebhookRequest,
)
from channels.inbound_json import ID_MAX_CHARS, JsonObject, decode_object, validated
from channels.telegram.inbound_content import (
    chat_identity,
    message_content,
    sender_identity,
    unsupported,
    user_identity,
)
from channels.telegram.inbound_reactions import reaction_content
from events.types import ContactIdentity, InboundEdit, InboundInteractive
from events.types.common import Provider

SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  # a header name

_UNKNOWN = "unknown"


class TelegramInbound:
    """Inbound adapter of one Telegram bot, built with the bot's webhook secret token."""

    provider: Provider = "telegram"

    def __init__(self, secret_token: str) -> None:
        if not secret_token:
            raise ValueError("a Telegram channel needs a non-empty webhook secret token")
        self._secret = secret_token.encode("utf-8")
        self._parsers: dict[str, Callable[[JsonObject, str], InboundMessage]] = {
            "message": self._message,
            "edited_message": self._edited_message,
            "callback_query": self._callback_query,
            "message_reaction": self._message_reaction,
        }

    def verify(self, request: WebhookRequest) -> None:
        """Check the secret token header in constant time."""
        given = request.headers.get(SECRET_TOKEN_HEADER)
        if not given:
            raise SignatureInvalid(
                SECRET_TOKEN_HEADER,
                f"{SECRET_TOKEN_HEADER} is missing; "
                "set secret_token in setWebhook to the channel's secret",
            )
        if not hmac.compare_digest(self._secret, given.encode("utf-8", "replace")):
            raise SignatureInvalid(
                SECRET_TOKEN_HEADER,
                f"{SECRET_TOKEN_HEADER} does not match the channel's secret token",
            )

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        """Return the one event an update carries."""
        update = decode_object(request.body)
        update_id = str(update.integer("update_id"))
        for kind, parse_part in self._parsers.items():
            part = update.optional_object(kind)
            if part is not None:
                return [parse_part(part, update_id)]
        return [_unknown_update(update, update_id)]

    def _message(self, message: JsonObject, update_id: str) -> InboundMessage:
        chat_id = message.object("chat").identifier("id")
        replied = message.optional_object("reply_to_message")
        return InboundMessage(
            conversation_key=chat_id,
            dedup_key=update_id,
            provider_message_id=f"{chat_id}:{message.identifier('message_id')}",
            contact=sender_identity(message),
            message=message_content(message),
            reply_to=f"{chat_id}:{replied.identifier('message_id')}" if replied else None,
            provider_timestamp=message.unix_time("date"),
        )

    def _edited_message(self, message: JsonObject, update_id: str) -> InboundMessage:
        chat_id = message.object("chat").identifier("id")
        target = f"{chat_id}:{message.identifier('message_id')}"
        text = message.optional_string("text") or message.optional_string("caption")
        edit = (
            validated(message.path, lambda: InboundEdit(target_message_id=target, text=text))
            if text
            else unsupported("edited_message", message)
        )
        edited_at = "edit_date" if message.has("edit_date") else "date"
        return InboundMessage(
            conversation_key=chat_id,
            dedup_key=update_id,
            # The edit is a message of its own; the update id tells one edit from the next.
            provider_message_id=f"{target}:edit:{update_id}",
            contact=sender_identity(message),
            message=edit,
            provider_timestamp=message.unix_time(edited_at),
        )

    def _callback_query(self, query: JsonObject, update_id: str) -> InboundMessage:
        query_id = query.identifier("id")
        user = query.object("from")
        message = query.optional_object("message")
        # Without the message (an inline-mode keyboard) the tap belongs to the user's chat.
        chat_id = message.object("chat").identifier("id") if message else user.identifier("id")
        data = query.optional_string("data")
        content = (
            validated(
                query.at("data"),
                lambda: InboundInteractive(
                    interaction="callback_query",
                    reply_id=data,
                    title=_button_label(message, data),
                    payload=data,
                ),
            )
            if data is not None
            else unsupported("callback_query", query)  # a game's button carries no data
        )
        return InboundMessage(
            conversation_key=chat_id,
            dedup_key=update_id,
            provider_message_id=f"callback_query:{query_id}",
            contact=user_identity(user),
            message=content,
            reply_to=f"{chat_id}:{message.identifier('message_id')}" if message else None,
        )

    def _message_reaction(self, change: JsonObject, update_id: str) -> InboundMessage:
        chat_id = change.object("chat").identifier("id")
        target = f"{chat_id}:{change.identifier('message_id')}"
        user = change.optional_object("user")
        actor = change.optional_object("actor_chat")  # an anonymous group admin
        if user is not None:
            contact = user_identity(user)
        elif actor is not None:
            contact = chat_identity(actor)
        else:
            raise PayloadInvalid(change.at("user"), f"{change.at('user')} is missing")
        return InboundMessage(
            conversation_key=chat_id,
            dedup_key=update_id,
            provider_message_id=f"{target}:reaction:{update_id}",
            contact=contact,
            message=reaction_content(change, target),
            provider_timestamp=change.unix_time("date"),
        )


def _button_label(message: JsonObject | None, data: str) -> str | None:
    """The text of the inline button whose ``callback_data`` is ``data``, if still shown."""
    markup = message.get("reply_markup") if message else None
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    for row in rows if isinstance(rows, list) else ():
        for button in row if isinstance(row, list) else ():
            if isinstance(button, dict) and button.get("callback_data") == data:
                label = button.get("text")
                return label if isinstance(label, str) and label else None
    return None


def _unknown_update(update: JsonObject, update_id: str) -> InboundMessage:
    """Record an update kind atende does not model, never dropping it.

    Who and where are read leniently (a kind we do not know may be shaped any way): the
    part's ``chat`` and ``from``/``user`` when they look right, else ``"unknown"``.
    """
    kind, part = next(
        ((key, value) for key, value in update.raw.items() if isinstance(value, dict)),
        ("update", update.raw),
    )
    raw = JsonObject(part, kind if part is not update.raw else "")
    sender = _lenient_id(part, "from") or _lenient_id(part, "user")
    sender = sender or _lenient_id(part, "sender_chat")
    chat = _lenient_id(part, "chat") or sender or _UNKNOWN
    return InboundMessage(
        conversation_key=chat,
        dedup_key=update_id,
        provider_message_id=f"update:{update_id}",
        contact=ContactIdentity(provider_user_id=sender or _UNKNOWN),
        message=unsupported(kind, raw),
    )


def _lenient_id(part: dict[str, object], key: str) -> str | None:
    value = part.get(key)
    identifier = value.get("id") if isinstance(value, dict) else None
    if isinstance(identifier, bool) or not isinstance(identifier, int | str):
        return None
    text = str(identifier)
    return text if 0 < len(text) <= ID_MAX_CHARS else None
