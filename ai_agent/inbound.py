"""What the contact said in a turn: the stored inbound messages of its seqs, as text.

Media arrive without their content (voice notes are not transcribed nor images shown to the
model yet): a caption stands for its media, and media without one is marked as such, so the
agent can say it cannot listen or see instead of answering nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

_INBOUND = """
SELECT seq, kind, body FROM messages
WHERE tenant_id = $1 AND conversation_id = $2 AND direction = 'in' AND seq = ANY($3::bigint[])
ORDER BY seq
"""

_LISTENABLE = frozenset({"audio", "voice"})
_DESCRIBED_MAX_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class InboundText:
    """One inbound message of the turn: its text, or the kind of media it is without one.

    Messages that are not media always have a text: their own, or what they hold, described.
    """

    seq: int
    text: str | None
    media_kind: str | None = None

    @property
    def unreadable(self) -> bool:
        """Media with no text at all: nothing the model could answer."""
        return self.text is None


@dataclass(frozen=True, slots=True)
class TurnInbound:
    """The turn's inbound messages in seq order."""

    messages: tuple[InboundText, ...]

    @property
    def only_media(self) -> bool:
        """Every message is media without text (or there is none at all)."""
        return all(message.unreadable for message in self.messages)

    @property
    def heard_audio(self) -> bool:
        """Some message without text is a voice note or an audio."""
        return any(m.unreadable and m.media_kind in _LISTENABLE for m in self.messages)

    def texts(self) -> dict[int, str]:
        """Each message's text for the model by seq; media without text is described."""
        return {m.seq: m.text or f"[{m.media_kind or 'media'} without text]" for m in self.messages}


async def read_turn_inbound(
    pool: asyncpg.Pool, tenant_id: str, conversation_id: str, seqs: Sequence[int]
) -> TurnInbound:
    """The stored inbound messages of ``seqs`` (a seq not stored yet is left out)."""
    rows = await pool.fetch(_INBOUND, tenant_id, conversation_id, list(seqs))
    return TurnInbound(tuple(_inbound(row["seq"], row["kind"], row["body"]) for row in rows))


def _inbound(seq: int, kind: str, body: str | dict[str, object] | None) -> InboundText:
    data = json.loads(body) if isinstance(body, str) else (body or {})
    for key in ("text", "caption", "title", "body"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return InboundText(seq, value)
    if kind == "media":
        media_kind = data.get("media_kind")
        return InboundText(seq, None, media_kind if isinstance(media_kind, str) else "media")
    # A location, shared contacts...: what they hold, for the model to read.
    described = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return InboundText(seq, f"[{kind}] {described[:_DESCRIBED_MAX_CHARS]}")
