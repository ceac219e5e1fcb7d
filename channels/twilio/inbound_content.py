"""The content of one Twilio incoming message, as one or more contract models."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import ValidationError

from channels.inbound import PayloadInvalid
from channels.twilio.webhook_form import TwilioForm
from events.types import (
    InboundContent,
    InboundInteractive,
    InboundLocation,
    InboundMedia,
    InboundText,
    InboundUnsupported,
)
from events.types.common import MediaKind

_PROVIDER_TYPE_MAX_CHARS = 64
_BUTTON_FIELDS = {"reply_id": "ButtonPayload", "title": "ButtonText", "payload": "ButtonPayload"}
_LIST_FIELDS = {"reply_id": "ListId", "title": "ListTitle"}
_LOCATION_FIELDS = {
    "latitude": "Latitude",
    "longitude": "Longitude",
    "name": "Label",
    "address": "Address",
}


def message_content(form: TwilioForm) -> list[InboundContent]:
    """What the message holds, first match wins: media, location, button, list row, text.

    A form with none of them (a kind Twilio forwards that we do not model) is kept whole as
    ``unsupported``.
    """
    if form.count("NumMedia"):
        return _media(form)
    if form.get("Latitude") or form.get("Longitude"):
        return [_checked("Latitude", lambda: _location(form), _LOCATION_FIELDS)]
    if form.get("ButtonPayload") or form.get("ButtonText"):
        return [_checked("ButtonPayload", lambda: _button(form), _BUTTON_FIELDS)]
    if form.get("ListId"):
        return [_checked("ListId", lambda: _list_row(form), _LIST_FIELDS)]
    if body := form.get("Body"):
        return [_checked("Body", lambda: InboundText(text=body))]
    kind = form.get("MessageType") or "unknown"
    return [
        _checked(
            "MessageType",
            lambda: InboundUnsupported(
                provider_type=kind[:_PROVIDER_TYPE_MAX_CHARS], raw=form.raw()
            ),
        )
    ]


def _checked(
    field: str, build: Callable[[], InboundContent], fields: Mapping[str, str] | None = None
) -> InboundContent:
    """Build a contract model; a value it refuses is reported under its form field's name."""
    try:
        return build()
    except ValidationError as error:
        first = error.errors()[0]
        named = (fields or {}).get(str(first["loc"][0]) if first["loc"] else "", field)
        raise PayloadInvalid(named, f"{named} is not acceptable: {first['msg']}") from None


def _media(form: TwilioForm) -> list[InboundContent]:
    return [_one_media(form, index) for index in range(form.count("NumMedia"))]


def _one_media(form: TwilioForm, index: int) -> InboundContent:
    url_field, type_field = f"MediaUrl{index}", f"MediaContentType{index}"
    url = form.text(url_field)
    mime_type = form.get(type_field)
    # Twilio has one Body per message; it captions the first media.
    caption = form.get("Body") if index == 0 else None
    return _checked(
        url_field,
        lambda: InboundMedia(
            media_kind=_media_kind(mime_type), url=url, mime_type=mime_type, caption=caption
        ),
        {"url": url_field, "mime_type": type_field, "caption": "Body"},
    )


def _media_kind(mime_type: str | None) -> MediaKind:
    major = (mime_type or "").partition("/")[0].lower()
    if major == "image":
        return "image"
    if major == "audio":
        return "audio"
    if major == "video":
        return "video"
    return "document"


def _location(form: TwilioForm) -> InboundContent:
    return InboundLocation(
        latitude=form.number("Latitude"),
        longitude=form.number("Longitude"),
        name=form.get("Label"),
        address=form.get("Address"),
    )


def _button(form: TwilioForm) -> InboundContent:
    # A quick reply to a template: the payload is what we set when sending the button.
    payload = form.get("ButtonPayload")
    text = form.get("ButtonText")
    return InboundInteractive(
        interaction="button_reply", reply_id=payload or text or "", title=text, payload=payload
    )


def _list_row(form: TwilioForm) -> InboundContent:
    return InboundInteractive(
        interaction="list_reply", reply_id=form.text("ListId"), title=form.get("ListTitle")
    )
