"""Field types and the base model shared by the payloads of several event types."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

# Limits are contract limits, wider than any single provider's, so that an adapter (not the
# contract) decides how to split or trim for its channel.
TEXT_MAX_CHARS = 65_536
CAPTION_MAX_CHARS = 4_096
NOTE_MAX_CHARS = 4_096

# Ids atende mints itself are printable ASCII without spaces; ids a provider mints are only
# bounded, since providers differ (and change) in what they send.
Identifier = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]

ChannelId = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
ProviderMessageId = Annotated[str, Field(min_length=1, max_length=256)]
TurnId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
FencingToken = Annotated[int, Field(ge=1)]
Seq = Annotated[int, Field(ge=1)]
AgentProfile = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]*$")]
Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Confidence = Annotated[float, Field(ge=0.0, le=1.0)]
E164Phone = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{1,14}$")]
HttpUrl = Annotated[str, Field(max_length=4_096, pattern=r"^https?://[^\s]+$")]
MimeType = Annotated[
    str,
    Field(
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(;.*)?$",
    ),
]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Filename = Annotated[str, Field(min_length=1, max_length=255)]

Provider = Literal["whatsapp", "twilio", "telegram", "chatwoot", "generic"]
MediaKind = Literal["image", "audio", "video", "document", "sticker", "voice"]


class PayloadModel(BaseModel):
    """Base of the objects nested inside a payload: frozen, and keeps unknown fields.

    Kept fields are what lets an older consumer read a newer producer's events; edges that
    must refuse them decode with ``strict=True``.
    """

    model_config = ConfigDict(extra="allow", frozen=True)


def _require_kind(schema: JsonDict) -> None:
    # ``kind`` has a default for producers' convenience, yet a decoder needs it to pick the
    # variant, so the published schema must list it as required.
    required = schema.get("required", [])
    properties = schema.get("properties", {})
    assert isinstance(required, list)
    assert isinstance(properties, dict)
    schema["required"] = ["kind", *(name for name in required if name != "kind")]
    kind = properties.get("kind")
    if isinstance(kind, dict):
        kind.setdefault("description", "Tag that selects this variant.")


class Tagged(PayloadModel):
    """Base of the variants of a union discriminated by their ``kind`` field."""

    model_config = ConfigDict(json_schema_extra=_require_kind)
