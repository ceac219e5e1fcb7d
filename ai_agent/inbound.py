"""What the contact said in a turn: the stored inbound messages of its seqs.

Text is read as it is; a caption stands for its media; a location or contact card is
described. Media keep what is needed to fetch them (``InboundMedia``), and a voice note its
stored transcript once it has one, so ``ai_agent.turn_media`` can transcribe or show them
when the profile allows it, or say it cannot listen or see instead of answering nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from pydantic import ValidationError

from events.types.inbound_content import InboundMedia

_INBOUND = """
SELECT seq, kind, body, transcript FROM messages
WHERE tenant_id = $1 AND conversation_id = $2 AND direction = 'in' AND seq = ANY($3::bigint[])
ORDER BY seq
"""

_KEEP_TRANSCRIPT = """
UPDATE messages SET transcript = $4
WHERE tenant_id = $1 AND conversation_id = $2 AND direction = 'in' AND seq = $3
"""

LISTENABLE = frozenset({"audio", "voice"})
_DESCRIBED_MAX_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class InboundText:
    """One inbound message of the turn: its text, or the kind of media it is without one.

    Messages that are not media always have a text: their own, or what they hold, described.
    ``media`` is set for media that can be fetched; ``transcript`` once a voice note has one.
    """

    seq: int
    text: str | None
    media_kind: str | None = None
    media: InboundMedia | None = None
    transcript: str | None = None

    @property
    def unreadable(self) -> bool:
        """Media with no text at all: nothing the model could answer."""
        return self.text is None

    @property
    def listenable(self) -> bool:
        """A voice note or audio."""
        return self.media_kind in LISTENABLE


@dataclass(frozen=True, slots=True)
class TurnInbound:
    """The turn's inbound messages in seq order."""

    messages: tuple[InboundText, ...]


async def read_turn_inbound(
    pool: asyncpg.Pool, tenant_id: str, conversation_id: str, seqs: Sequence[int]
) -> TurnInbound:
    """The stored inbound messages of ``seqs`` (a seq not stored yet is left out)."""
    rows = await pool.fetch(_INBOUND, tenant_id, conversation_id, list(seqs))
    return TurnInbound(
        tuple(_inbound(row["seq"], row["kind"], row["body"], row["transcript"]) for row in rows)
    )


async def keep_transcript(
    pool: asyncpg.Pool, tenant_id: str, conversation_id: str, seq: int, transcript: str
) -> None:
    """Store a voice note's transcript with its message."""
    await pool.execute(_KEEP_TRANSCRIPT, tenant_id, conversation_id, seq, transcript)


def _inbound(
    seq: int, kind: str, body: str | dict[str, object] | None, transcript: str | None
) -> InboundText:
    data = json.loads(body) if isinstance(body, str) else (body or {})
    media = _media(data) if kind == "media" else None
    media_kind = data.get("media_kind") if kind == "media" else None
    media_kind = (
        media_kind if isinstance(media_kind, str) else ("media" if kind == "media" else None)
    )
    for key in ("text", "caption", "title", "body"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return InboundText(seq, value, media_kind, media, transcript)
    if kind == "media":
        return InboundText(seq, None, media_kind, media, transcript)
    # A location, shared contacts...: what they hold, for the model to read.
    described = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return InboundText(seq, f"[{kind}] {described[:_DESCRIBED_MAX_CHARS]}")


def _media(data: dict[str, object]) -> InboundMedia | None:
    """The media as the contract has it; None when the stored body is not one (it cannot be
    fetched then, and is answered like media the profile cannot take)."""
    try:
        return InboundMedia.model_validate(data)
    except ValidationError:
        return None
