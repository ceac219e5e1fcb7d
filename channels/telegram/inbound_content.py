"""The content of one Telegram ``Message`` as a contract ``InboundContent``, and who sent it.

Field names follow the Bot API's ``Message`` object (https://core.telegram.org/bots/api#message).
A message kind not listed here (poll, dice, game, service messages such as
``new_chat_members``…) becomes ``InboundUnsupported`` carrying the whole message.
"""

from __future__ import annotations

from channels.inbound import PayloadInvalid
from channels.inbound_json import JsonObject, validated
from events.types import (
    ContactIdentity,
    InboundContacts,
    InboundContent,
    InboundLocation,
    InboundMedia,
    InboundText,
    InboundUnsupported,
    SharedContact,
    SharedPhone,
)
from events.types.common import MediaKind

# Keys a Message carries whatever its content; the first key outside this set names the
# kind of a message we do not model.
_ENVELOPE_KEYS = frozenset(
    {
        "message_id", "message_thread_id", "from", "sender_chat", "sender_boost_count",
        "sender_business_bot", "date", "edit_date", "business_connection_id", "chat",
        "forward_origin", "forward_from", "forward_from_chat", "forward_from_message_id",
        "forward_signature", "forward_sender_name", "forward_date", "is_topic_message",
        "is_automatic_forward", "reply_to_message", "external_reply", "quote",
        "reply_to_story", "via_bot", "has_protected_content", "is_from_offline",
        "media_group_id", "author_signature", "entities", "caption", "caption_entities",
        "link_preview_options", "effect_id", "show_caption_above_media",
        "has_media_spoiler", "reply_markup",
    }
)  # fmt: skip

# Checked in this order: an animation also comes as a document, a venue also as a location.
_MEDIA_KEYS: tuple[tuple[str, MediaKind], ...] = (
    ("animation", "video"),
    ("document", "document"),
    ("audio", "audio"),
    ("voice", "voice"),
    ("video", "video"),
    ("video_note", "video"),
    ("sticker", "sticker"),
)


def message_content(message: JsonObject) -> InboundContent:
    """What a message holds: text, media, a place, a contact card, or an unsupported kind."""
    text = message.optional_string("text")
    if text is not None:
        return validated(message.at("text"), lambda: InboundText(text=text))
    caption = message.optional_string("caption")
    if message.has("photo"):
        return _media(_largest_photo(message), "image", caption)
    for key, kind in _MEDIA_KEYS:
        part = message.optional_object(key)
        if part is not None:
            return _media(part, kind, caption)
    venue = message.optional_object("venue")
    if venue is not None:
        return _location(venue.object("location"), venue.optional_string("title"), venue)
    location = message.optional_object("location")
    if location is not None:
        return _location(location, None, None)
    contact = message.optional_object("contact")
    if contact is not None:
        return _contact_card(contact)
    return unsupported(_kind_of(message), message)


def unsupported(provider_type: str, part: JsonObject) -> InboundUnsupported:
    """Keep a part we do not model, as it came, under the provider's name for it."""
    return validated(
        part.path,
        lambda: InboundUnsupported(provider_type=provider_type[:64], raw=part.as_json()),
    )


def _kind_of(message: JsonObject) -> str:
    return next((key for key in message.raw if key not in _ENVELOPE_KEYS), "message")


def _largest_photo(message: JsonObject) -> JsonObject:
    sizes = message.objects("photo")
    if not sizes:
        raise PayloadInvalid(message.at("photo"), f"{message.at('photo')} holds no sizes")
    # Telegram lists sizes smallest first, but the area says it without trusting the order.
    return max(sizes, key=lambda size: size.integer("width") * size.integer("height"))


def _media(part: JsonObject, kind: MediaKind, caption: str | None) -> InboundMedia:
    file_id = part.string("file_id")
    mime_type = part.optional_string("mime_type")
    filename = part.optional_string("file_name")
    size_bytes = part.optional_integer("file_size")
    duration_s = part.optional_integer("duration")
    return validated(
        part.path,
        lambda: InboundMedia(
            media_kind=kind,
            media_id=file_id,
            mime_type=mime_type,
            filename=filename,
            size_bytes=size_bytes,
            duration_s=duration_s,
            caption=caption,
        ),
    )


def _location(point: JsonObject, name: str | None, venue: JsonObject | None) -> InboundLocation:
    latitude = point.number("latitude")
    longitude = point.number("longitude")
    address = venue.optional_string("address") if venue is not None else None
    return validated(
        point.path,
        lambda: InboundLocation(latitude=latitude, longitude=longitude, name=name, address=address),
    )


def _contact_card(contact: JsonObject) -> InboundContacts:
    name = full_name(contact) or contact.string("phone_number")
    number = contact.string("phone_number")
    user_id = contact.optional_identifier("user_id")
    return validated(
        contact.path,
        lambda: InboundContacts(
            contacts=(
                SharedContact(
                    name=name, phones=(SharedPhone(number=number, provider_user_id=user_id),)
                ),
            )
        ),
    )


def full_name(person: JsonObject) -> str | None:
    """``first_name`` and ``last_name`` joined, or ``None`` when both are absent or empty."""
    parts = (person.optional_string("first_name"), person.optional_string("last_name"))
    return " ".join(part for part in parts if part) or None


def user_identity(user: JsonObject) -> ContactIdentity:
    """A Telegram ``User`` as the contact's identity."""
    user_id = user.identifier("id")
    display_name = full_name(user)
    username = user.optional_string("username")
    return validated(
        user.path,
        lambda: ContactIdentity(
            provider_user_id=user_id, display_name=display_name, username=username
        ),
    )


def chat_identity(chat: JsonObject) -> ContactIdentity:
    """A ``Chat`` that acts as the sender (a channel, an anonymous group admin)."""
    chat_id = chat.identifier("id")
    title = chat.optional_string("title") or full_name(chat)
    username = chat.optional_string("username")
    return validated(
        chat.path,
        lambda: ContactIdentity(provider_user_id=chat_id, display_name=title, username=username),
    )


def sender_identity(message: JsonObject) -> ContactIdentity:
    """Who sent a message: ``from``, else the chat it was sent on behalf of."""
    user = message.optional_object("from")
    if user is not None:
        return user_identity(user)
    sender_chat = message.optional_object("sender_chat")
    if sender_chat is not None:
        return chat_identity(sender_chat)
    raise PayloadInvalid(message.at("from"), f"{message.at('from')} is missing")
