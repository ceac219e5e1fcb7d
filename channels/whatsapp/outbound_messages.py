"""The JSON objects the WhatsApp Cloud API sends, one per message, built from reply parts.

Only the content is built here (``type`` and its object); the sender adds the recipient and
our reply id. Limits are WhatsApp's: a part that exceeds one becomes several messages rather
than a rejected request.
"""

from __future__ import annotations

from typing import Any

from channels.text_split import split_text
from events.types.reply_parts import (
    ReplyButton,
    ReplyButtons,
    ReplyMedia,
    ReplyPart,
    ReplyTemplate,
    ReplyText,
)

TEXT_MAX_CHARS = 4_096
CAPTION_MAX_CHARS = 1_024
INTERACTIVE_BODY_MAX_CHARS = 1_024
REPLY_BUTTONS_MAX = 3
REPLY_BUTTON_TITLE_MAX_CHARS = 20
LIST_ROW_TITLE_MAX_CHARS = 24
LIST_BUTTON_LABEL_MAX_CHARS = 20

# Kinds whose object takes a caption; audio and stickers do not, so theirs follows as text.
_CAPTIONED = frozenset({"image", "video", "document"})

Content = dict[str, Any]


def contents(part: ReplyPart, *, list_button_label: str) -> list[Content]:
    """The message contents ``part`` becomes, in sending order."""
    if isinstance(part, ReplyText):
        return text_contents(part.text)
    if isinstance(part, ReplyMedia):
        return media_contents(part)
    if isinstance(part, ReplyButtons):
        return buttons_contents(part, list_button_label=list_button_label)
    return [template_content(part)]


def text_contents(text: str) -> list[Content]:
    """Text messages, split at WhatsApp's limit; a link gets a preview."""
    return [
        {"type": "text", "text": {"body": chunk, "preview_url": _has_link(chunk)}}
        for chunk in split_text(text, TEXT_MAX_CHARS)
    ]


def media_contents(part: ReplyMedia) -> list[Content]:
    """A media message by id or link; a caption it cannot carry follows as text."""
    kind = "audio" if part.media_kind == "voice" else part.media_kind
    media: dict[str, Any] = {"id": part.media_id} if part.media_id else {"link": part.url}
    caption = part.caption or ""
    captioned = kind in _CAPTIONED and len(caption) <= CAPTION_MAX_CHARS
    if caption and captioned:
        media["caption"] = caption
    if kind == "document" and part.filename:
        media["filename"] = part.filename
    messages: list[Content] = [{"type": kind, kind: media}]
    if caption and not captioned:
        messages.extend(text_contents(caption))
    return messages


def buttons_contents(part: ReplyButtons, *, list_button_label: str) -> list[Content]:
    """Reply buttons (up to three) or a list (up to ten rows), after any text that does not fit."""
    *leading, body = split_text(part.text, INTERACTIVE_BODY_MAX_CHARS) or [part.text]
    messages = [content for chunk in leading for content in text_contents(chunk)]
    if len(part.buttons) <= REPLY_BUTTONS_MAX:
        action: dict[str, Any] = {"buttons": [_reply_button(b) for b in part.buttons]}
        interactive: dict[str, Any] = {"type": "button", "body": {"text": body}, "action": action}
    else:
        rows = [
            {"id": b.id, "title": _shorten(b.title, LIST_ROW_TITLE_MAX_CHARS)} for b in part.buttons
        ]
        action = {
            "button": _shorten(list_button_label, LIST_BUTTON_LABEL_MAX_CHARS),
            "sections": [{"rows": rows}],
        }
        interactive = {"type": "list", "body": {"text": body}, "action": action}
    messages.append({"type": "interactive", "interactive": interactive})
    return messages


def template_content(part: ReplyTemplate) -> Content:
    """A template message; the parameters fill the body's placeholders in order."""
    template: dict[str, Any] = {"name": part.name, "language": {"code": part.language}}
    if part.parameters:
        parameters = [{"type": "text", "text": value} for value in part.parameters]
        template["components"] = [{"type": "body", "parameters": parameters}]
    return {"type": "template", "template": template}


def _reply_button(button: ReplyButton) -> dict[str, Any]:
    title = _shorten(button.title, REPLY_BUTTON_TITLE_MAX_CHARS)
    return {"type": "reply", "reply": {"id": button.id, "title": title}}


def _shorten(text: str, limit: int) -> str:
    # A title over the limit is refused by WhatsApp; a trimmed one still reads.
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _has_link(text: str) -> bool:
    return "https://" in text or "http://" in text
