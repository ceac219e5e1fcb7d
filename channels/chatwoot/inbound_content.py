"""Parts of a Chatwoot message webhook: its attachments and its sender.

Shapes follow Chatwoot's message webhook data: an attachment has ``file_type``, ``data_url``,
``file_size`` (and ``coordinates_lat``/``coordinates_long``/``fallback_title`` for a
location); the sender of an incoming message is the contact (``id``, ``name``,
``phone_number``, ``identifier``).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from channels.inbound_json import JsonObject, validated
from events.types import (
    ContactIdentity,
    InboundContent,
    InboundLocation,
    InboundMedia,
    InboundUnsupported,
)
from events.types.common import MediaKind

_MEDIA_KINDS: dict[str, MediaKind] = {
    "image": "image",
    "audio": "audio",
    "video": "video",
    "file": "document",
}

# The contract's E.164 shape; Chatwoot stores numbers that way, but a contact created through
# its API may hold anything, and a phone is only a hint, not worth refusing a message over.
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def attachment_content(attachment: JsonObject) -> InboundContent:
    """An attachment as media, a location, or an unsupported part kept as it came."""
    file_type = attachment.optional_string("file_type") or "file"
    media_kind = _MEDIA_KINDS.get(file_type)
    if media_kind is not None:
        return _media(attachment, media_kind)
    if file_type == "location":
        latitude = attachment.number("coordinates_lat")
        longitude = attachment.number("coordinates_long")
        name = attachment.optional_string("fallback_title")
        return validated(
            attachment.path,
            lambda: InboundLocation(latitude=latitude, longitude=longitude, name=name),
        )
    return validated(
        attachment.path,
        lambda: InboundUnsupported(provider_type=file_type[:64], raw=attachment.as_json()),
    )


def _media(attachment: JsonObject, media_kind: MediaKind) -> InboundMedia:
    url = attachment.string("data_url")
    size_bytes = attachment.optional_integer("file_size")
    filename = _filename(url) if media_kind == "document" else None
    return validated(
        attachment.path,
        lambda: InboundMedia(
            media_kind=media_kind, url=url, size_bytes=size_bytes, filename=filename
        ),
    )


def _filename(url: str) -> str | None:
    """The last segment of an Active Storage URL, which is the uploaded file's name."""
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    return name if 0 < len(name) <= 255 else None


def sender_identity(sender: JsonObject) -> ContactIdentity:
    """The contact who wrote: Chatwoot's contact id, name and E.164 phone when it has one."""
    contact_id = sender.identifier("id")
    name = sender.optional_string("name") or None
    phone = sender.optional_string("phone_number")
    return validated(
        sender.path,
        lambda: ContactIdentity(
            provider_user_id=contact_id,
            display_name=name,
            phone=phone if phone and _E164.fullmatch(phone) else None,
        ),
    )
