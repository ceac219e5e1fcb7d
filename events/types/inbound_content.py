"""What a contact sent: one variant per kind of inbound message, discriminated by ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, JsonValue, model_validator

from events.types.common import (
    CAPTION_MAX_CHARS,
    TEXT_MAX_CHARS,
    Filename,
    HttpUrl,
    MediaKind,
    MimeType,
    PayloadModel,
    ProviderMessageId,
    Sha256Hex,
    Tagged,
)

_Email = Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class InboundText(Tagged):
    """A plain text message."""

    kind: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=TEXT_MAX_CHARS, description="The text as sent.")


class InboundMedia(Tagged):
    """An image, audio, video, document, sticker or voice note; the bytes stay at the provider."""

    kind: Literal["media"] = "media"
    media_kind: MediaKind = Field(description="What the media is, as the provider labels it.")
    media_id: str | None = Field(
        default=None, min_length=1, max_length=512, description="Provider's id to download it."
    )
    url: HttpUrl | None = Field(default=None, description="Provider URL to download it.")
    mime_type: MimeType | None = Field(default=None, description="MIME type, when known.")
    caption: str | None = Field(
        default=None, max_length=CAPTION_MAX_CHARS, description="Text sent with the media."
    )
    filename: Filename | None = Field(default=None, description="Original name of a document.")
    sha256: Sha256Hex | None = Field(default=None, description="Hex SHA-256 of the bytes.")
    size_bytes: int | None = Field(default=None, ge=0, description="Size, when announced.")
    duration_s: float | None = Field(default=None, ge=0, description="Length of audio/video.")

    @model_validator(mode="after")
    def _needs_a_source(self) -> Self:
        if self.media_id is None and self.url is None:
            raise ValueError("media needs a media_id or a url to fetch it from")
        return self


class InboundLocation(Tagged):
    """A shared location (a pin, or a named place)."""

    kind: Literal["location"] = "location"
    latitude: float = Field(ge=-90.0, le=90.0, description="Degrees, WGS 84.")
    longitude: float = Field(ge=-180.0, le=180.0, description="Degrees, WGS 84.")
    name: str | None = Field(default=None, max_length=1_024, description="Name of the place.")
    address: str | None = Field(default=None, max_length=1_024, description="Street address.")


class SharedPhone(PayloadModel):
    """A phone number on a shared contact card, as written on the card."""

    number: str = Field(min_length=1, max_length=64, description="Number as given, any format.")
    label: str | None = Field(default=None, max_length=64, description="E.g. `CELL`, `WORK`.")
    provider_user_id: str | None = Field(
        default=None, max_length=256, description="Provider's user id of this number, if any."
    )


class SharedContact(PayloadModel):
    """One contact card shared by the contact."""

    name: str = Field(min_length=1, max_length=512, description="Formatted full name.")
    phones: tuple[SharedPhone, ...] = Field(default=(), max_length=20, description="Numbers.")
    emails: tuple[_Email, ...] = Field(default=(), max_length=20, description="E-mail addresses.")
    organization: str | None = Field(default=None, max_length=512, description="Company name.")


class InboundContacts(Tagged):
    """One or more contact cards."""

    kind: Literal["contacts"] = "contacts"
    contacts: tuple[SharedContact, ...] = Field(
        min_length=1, max_length=20, description="The cards, in the order shared."
    )


class InboundInteractive(Tagged):
    """A tap on a button or list row we sent, or a Telegram callback query."""

    kind: Literal["interactive"] = "interactive"
    interaction: Literal["button_reply", "list_reply", "callback_query"] = Field(
        description="Which control was used."
    )
    reply_id: str = Field(
        min_length=1, max_length=256, description="Id we gave the button or row when sending."
    )
    title: str | None = Field(default=None, max_length=1_024, description="Label the user saw.")
    payload: str | None = Field(
        default=None, max_length=4_096, description="Extra data carried by the control."
    )


class InboundReaction(Tagged):
    """An emoji reaction to a message, or the removal of one."""

    kind: Literal["reaction"] = "reaction"
    target_message_id: ProviderMessageId = Field(description="Provider id of the reacted message.")
    emoji: str | None = Field(
        default=None, min_length=1, max_length=32, description="The emoji; absent when removed."
    )
    removed: bool = Field(default=False, description="True when the reaction was taken back.")

    @model_validator(mode="after")
    def _emoji_unless_removed(self) -> Self:
        if not self.removed and self.emoji is None:
            raise ValueError("a reaction needs an emoji unless it was removed")
        return self


class InboundEdit(Tagged):
    """A correction of an earlier text message."""

    kind: Literal["edit"] = "edit"
    target_message_id: ProviderMessageId = Field(description="Provider id of the edited message.")
    text: str = Field(min_length=1, max_length=TEXT_MAX_CHARS, description="The new text.")


class InboundUnsupported(Tagged):
    """A message kind atende does not model yet; the provider's part is kept as it came."""

    kind: Literal["unsupported"] = "unsupported"
    provider_type: str = Field(
        min_length=1, max_length=64, description="Provider's name for the type, e.g. `poll`."
    )
    raw: dict[str, JsonValue] = Field(
        default_factory=dict, max_length=256, description="The provider's message part, as JSON."
    )


InboundContent = Annotated[
    InboundText
    | InboundMedia
    | InboundLocation
    | InboundContacts
    | InboundInteractive
    | InboundReaction
    | InboundEdit
    | InboundUnsupported,
    Field(discriminator="kind"),
]
