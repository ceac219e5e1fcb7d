"""What the agent sends back: one variant per kind of outbound part, discriminated by ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from events.types.common import (
    CAPTION_MAX_CHARS,
    TEXT_MAX_CHARS,
    Filename,
    HttpUrl,
    MediaKind,
    MimeType,
    PayloadModel,
    Tagged,
)


class ReplyText(Tagged):
    """Text; the channel adapter splits it when the channel's limit is lower."""

    kind: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=TEXT_MAX_CHARS, description="The text to send.")


class ReplyMedia(Tagged):
    """A file to send, by URL or by an id the provider already holds."""

    kind: Literal["media"] = "media"
    media_kind: MediaKind = Field(description="How the channel should present it.")
    url: HttpUrl | None = Field(default=None, description="Public URL the provider fetches.")
    media_id: str | None = Field(
        default=None, min_length=1, max_length=512, description="Provider's id of an upload."
    )
    mime_type: MimeType | None = Field(default=None, description="MIME type, when known.")
    caption: str | None = Field(
        default=None, max_length=CAPTION_MAX_CHARS, description="Text shown with the media."
    )
    filename: Filename | None = Field(default=None, description="Name shown for a document.")

    @model_validator(mode="after")
    def _needs_a_source(self) -> Self:
        if self.media_id is None and self.url is None:
            raise ValueError("media needs a media_id or a url to send it from")
        return self


class ReplyButton(PayloadModel):
    """One choice offered to the contact; a tap comes back as an `interactive` message."""

    id: str = Field(min_length=1, max_length=256, description="Returned as `reply_id`.")
    title: str = Field(min_length=1, max_length=64, description="Label on the button.")


class ReplyButtons(Tagged):
    """Text with choices (reply buttons, a list, or an inline keyboard, as the channel has)."""

    kind: Literal["buttons"] = "buttons"
    text: str = Field(min_length=1, max_length=CAPTION_MAX_CHARS, description="Body above them.")
    buttons: tuple[ReplyButton, ...] = Field(
        min_length=1, max_length=10, description="The choices, in display order; unique ids."
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [button.id for button in self.buttons]
        if len(set(ids)) != len(ids):
            raise ValueError(f"button ids must be unique, got {ids}")
        return self


class ReplyTemplate(Tagged):
    """A pre-approved template, the only thing WhatsApp sends outside the 24-hour window."""

    kind: Literal["template"] = "template"
    name: str = Field(
        min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$", description="Template name."
    )
    language: str = Field(
        pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$", description="Template language, e.g. `pt_BR`."
    )
    parameters: tuple[Annotated[str, Field(max_length=1_024)], ...] = Field(
        default=(), max_length=32, description="Body parameters, in order."
    )


ReplyPart = Annotated[
    ReplyText | ReplyMedia | ReplyButtons | ReplyTemplate,
    Field(discriminator="kind"),
]
