"""The content of one WhatsApp Cloud API message, by its ``type``, as contract models."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Literal

from pydantic import ValidationError

from channels.inbound import PayloadInvalid
from channels.whatsapp.webhook_json import JsonNode, invalid_model
from events.types import (
    InboundContacts,
    InboundContent,
    InboundEdit,
    InboundInteractive,
    InboundLocation,
    InboundMedia,
    InboundReaction,
    InboundText,
    InboundUnsupported,
    SharedContact,
    SharedPhone,
)
from events.types.common import MediaKind

_MEDIA_KINDS: dict[str, MediaKind] = {
    "image": "image",
    "audio": "audio",
    "video": "video",
    "document": "document",
    "sticker": "sticker",
}
_INTERACTIONS: dict[str, Literal["button_reply", "list_reply"]] = {
    "button_reply": "button_reply",
    "list_reply": "list_reply",
}
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
# The contract's bounds on a shared card; a card beyond them is cut, not refused.
_MAX_CARDS = 20
_MAX_CARD_ENTRIES = 20
_PROVIDER_TYPE_MAX_CHARS = 64


def message_content(message: JsonNode, kind: str) -> InboundContent:
    """Normalize the part of ``message`` named by its ``type``; unknown types are kept raw."""
    build = _BUILDERS.get(kind)
    if build is None:
        return unsupported(kind, message)
    # Shared contacts are a list at ``contacts``; every other type is an object at its name.
    part = message if kind == "contacts" else message.child(kind)
    try:
        content = build(part, kind)
    except ValidationError as error:
        raise invalid_model(part.path, error) from None
    return content or unsupported(_subtype(kind, part), message)


def unsupported(provider_type: str, message: JsonNode) -> InboundUnsupported:
    """Keep a message we do not model, whole, so it is recorded rather than lost."""
    try:
        return InboundUnsupported(
            provider_type=provider_type[:_PROVIDER_TYPE_MAX_CHARS], raw=message.raw()
        )
    except ValidationError as error:
        raise invalid_model(message.path, error) from None


def _subtype(kind: str, part: JsonNode) -> str:
    # ``interactive.nfm_reply`` says more than ``interactive`` about what was not understood.
    subtype = part.opt_text("type")
    return f"{kind}.{subtype}" if subtype else kind


def _text(part: JsonNode, kind: str) -> InboundContent:
    return InboundText(text=part.text("body"))


def _media(part: JsonNode, kind: str) -> InboundContent:
    media_kind = _MEDIA_KINDS[kind]
    return InboundMedia(
        media_kind="voice" if media_kind == "audio" and part.opt_flag("voice") else media_kind,
        media_id=part.opt_text("id"),
        url=part.opt_text("url"),
        mime_type=part.opt_text("mime_type"),
        caption=part.opt_text("caption") or None,
        filename=part.opt_text("filename") or None,
        sha256=_hex_digest(part.opt_text("sha256")),
    )


def _hex_digest(value: str | None) -> str | None:
    """Meta sends the media hash base64-encoded; the contract keeps hex.

    A hash in neither form is left out: it only lets a downloader check the bytes, and a
    message must not be refused over it.
    """
    if value is None:
        return None
    if _HEX_SHA256.match(value.lower()):
        return value.lower()
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None


def _location(part: JsonNode, kind: str) -> InboundContent:
    return InboundLocation(
        latitude=part.number("latitude"),
        longitude=part.number("longitude"),
        name=part.opt_text("name") or None,
        address=part.opt_text("address") or None,
    )


def _contacts(message: JsonNode, kind: str) -> InboundContent:
    cards = list(message.items("contacts", required=True))
    return InboundContacts(contacts=tuple(_card(card) for card in cards[:_MAX_CARDS]))


def _card(card: JsonNode) -> SharedContact:
    name = card.opt_child("name")
    phones = [
        SharedPhone(
            number=phone.text("phone"),
            label=phone.opt_text("type") or None,
            provider_user_id=phone.opt_text("wa_id") or None,
        )
        for phone in card.items("phones")
        if phone.opt_text("phone")
    ]
    # A hand-typed address that is not one is left off the card rather than refusing it.
    emails = [
        address
        for email in card.items("emails")
        if (address := email.opt_text("email")) and _EMAIL.match(address)
    ]
    org = card.opt_child("org")
    return SharedContact(
        name=_card_name(card, name, phones),
        phones=tuple(phones[:_MAX_CARD_ENTRIES]),
        emails=tuple(emails[:_MAX_CARD_ENTRIES]),
        organization=(org.opt_text("company") or None) if org else None,
    )


def _card_name(card: JsonNode, name: JsonNode | None, phones: list[SharedPhone]) -> str:
    if name is not None:
        if formatted := name.opt_text("formatted_name"):
            return formatted
        parts = (name.opt_text("first_name"), name.opt_text("last_name"))
        if joined := " ".join(part for part in parts if part):
            return joined
    if phones:
        return phones[0].number
    path = card.field_path("name.formatted_name")
    raise PayloadInvalid(path, f"{path} is missing")


def _interactive(part: JsonNode, kind: str) -> InboundContent | None:
    interaction = _INTERACTIONS.get(part.opt_text("type") or "")
    if interaction is None:
        return None
    reply = part.child(interaction)
    return InboundInteractive(
        interaction=interaction, reply_id=reply.text("id"), title=reply.opt_text("title") or None
    )


def _button(part: JsonNode, kind: str) -> InboundContent:
    # A quick-reply button of a template: the payload is what we set when sending it.
    text = part.opt_text("text") or None
    payload = part.opt_text("payload") or None
    reply_id = payload or text
    if reply_id is None:
        raise PayloadInvalid(part.field_path("payload"), f"{part.field_path('payload')} is missing")
    return InboundInteractive(
        interaction="button_reply", reply_id=reply_id, title=text, payload=payload
    )


def _reaction(part: JsonNode, kind: str) -> InboundContent:
    # WhatsApp reports a withdrawn reaction as a reaction without an emoji.
    emoji = part.opt_text("emoji") or None
    return InboundReaction(
        target_message_id=part.ident("message_id"), emoji=emoji, removed=emoji is None
    )


def _edit(part: JsonNode, kind: str) -> InboundContent | None:
    target = part.ident("original_message_id")
    edited = part.child("message")
    inner = edited.opt_text("type") or "text"
    if inner == "text":
        body = edited.child("text").text("body")
    elif inner in _MEDIA_KINDS and (media := edited.opt_child(inner)) is not None:
        body = media.opt_text("caption") or ""
    else:
        return None
    return InboundEdit(target_message_id=target, text=body) if body else None


_BUILDERS: dict[str, Callable[[JsonNode, str], InboundContent | None]] = {
    **dict.fromkeys(_MEDIA_KINDS, _media),
    "text": _text,
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "edit": _edit,
}
