"""The body of a generic channel webhook: a strict pydantic model of our own format.

Strict on purpose: an app integrating with atende learns of a typo (``"txt"``), a wrong type
(an id sent as a number) or an unknown field at once, as a 400 naming the field, instead of
having it ignored. The format is described in ``channels.generic.inbound``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from events.types.common import (
    CAPTION_MAX_CHARS,
    TEXT_MAX_CHARS,
    E164Phone,
    Filename,
    HttpUrl,
    MediaKind,
    MimeType,
    Sha256Hex,
)
from events.types.delivery import DeliveryStatus

MAX_BATCH = 100
"""Most messages plus statuses one webhook may carry."""

_Id = Annotated[str, Field(min_length=1, max_length=256)]
_Label = Annotated[str, Field(min_length=1, max_length=1_024)]
_Email = Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
_Phone = Annotated[str, Field(min_length=1, max_length=64)]


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


# RFC 3339 with an offset, kept in UTC: events carry UTC times whatever zone the app used.
_Moment = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class _Strict(BaseModel):
    # No coercion, no unknown fields, no NaN: what the app sends is exactly what it meant.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class GenericAuthor(_Strict):
    """Who wrote: the app's id of the user, and what it knows of them."""

    id: _Id
    name: str | None = Field(default=None, max_length=256)
    phone: E164Phone | None = None
    username: str | None = Field(default=None, max_length=256)


class GenericMedia(_Strict):
    """A file the user sent, fetched by atende from ``url`` when needed."""

    kind: MediaKind
    url: HttpUrl
    mime_type: MimeType | None = None
    caption: str | None = Field(default=None, min_length=1, max_length=CAPTION_MAX_CHARS)
    filename: Filename | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    sha256: Sha256Hex | None = None


class GenericLocation(_Strict):
    """A shared place."""

    latitude: float = Field(ge=-90.0, le=90.0)
    longitude: float = Field(ge=-180.0, le=180.0)
    name: str | None = Field(default=None, max_length=1_024)
    address: str | None = Field(default=None, max_length=1_024)


class GenericContactCard(_Strict):
    """A contact card the user shared."""

    name: Annotated[str, Field(min_length=1, max_length=512)]
    phones: list[_Phone] = Field(default_factory=list, max_length=20)
    emails: list[_Email] = Field(default_factory=list, max_length=20)
    organization: str | None = Field(default=None, max_length=512)


class GenericInteractive(_Strict):
    """A tap on a button or list row that atende sent with this ``id``."""

    type: Literal["button_reply", "list_reply"]
    id: _Id
    title: _Label | None = None
    payload: str | None = Field(default=None, max_length=4_096)


class GenericReaction(_Strict):
    """An emoji on an earlier message; ``emoji`` absent or null takes a reaction back."""

    message_id: _Id
    emoji: str | None = Field(default=None, min_length=1, max_length=32)


class GenericEdit(_Strict):
    """A new text for an earlier message."""

    message_id: _Id
    text: str = Field(min_length=1, max_length=TEXT_MAX_CHARS)


_CONTENT_FIELDS = ("text", "media", "location", "contacts", "interactive", "reaction", "edit")


class GenericMessage(_Strict):
    """One message from a user; exactly one content field is set."""

    id: _Id
    conversation_id: _Id
    sender: GenericAuthor
    text: str | None = Field(default=None, min_length=1, max_length=TEXT_MAX_CHARS)
    media: GenericMedia | None = None
    location: GenericLocation | None = None
    contacts: list[GenericContactCard] | None = Field(default=None, min_length=1, max_length=20)
    interactive: GenericInteractive | None = None
    reaction: GenericReaction | None = None
    edit: GenericEdit | None = None
    reply_to: _Id | None = None
    timestamp: _Moment | None = None

    @model_validator(mode="after")
    def _one_content(self) -> Self:
        present = [name for name in _CONTENT_FIELDS if getattr(self, name) is not None]
        if len(present) != 1:
            found = ", ".join(present) if present else "none"
            raise ValueError(
                f"a message needs exactly one of {', '.join(_CONTENT_FIELDS)}; found {found}"
            )
        return self


class GenericError(_Strict):
    """Why a message could not be delivered."""

    code: Annotated[str, Field(min_length=1, max_length=64)]
    title: str | None = Field(default=None, max_length=1_024)


class GenericStatus(_Strict):
    """What happened to a message atende sent through the app."""

    message_id: _Id
    status: DeliveryStatus
    conversation_id: _Id | None = None
    error: GenericError | None = None
    timestamp: _Moment | None = None

    @model_validator(mode="after")
    def _error_only_when_failed(self) -> Self:
        if self.error is not None and self.status != "failed":
            raise ValueError(f"error is only allowed with status failed, not {self.status}")
        return self


class GenericWebhook(_Strict):
    """A batch of messages and statuses, at most ``MAX_BATCH`` items in all."""

    messages: list[GenericMessage] = Field(default_factory=list, max_length=MAX_BATCH)
    statuses: list[GenericStatus] = Field(default_factory=list, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        total = len(self.messages) + len(self.statuses)
        if total > MAX_BATCH:
            raise ValueError(f"a webhook carries at most {MAX_BATCH} items; this one has {total}")
        return self
