"""The agent's ports for what contacts send besides text: fetching media, transcribing audio.

The channel knows how to download its media (``channels/<provider>/media.py``); the process's
composition root (``consumers/ai_agent.py``) adapts it to ``MediaSource``. Transcription is
any OpenAI-compatible ``/audio/transcriptions`` (``ai_agent.transcription``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Protocol

from events.types.inbound_content import InboundMedia
from libs.errors import AtendeError


class MediaUnavailable(AtendeError):
    """A contact's media could not be had (fetched, or transcribed); the message says why."""


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A downloaded media: its bytes and MIME type, when known."""

    data: bytes = field(repr=False)
    mime_type: str | None

    def data_url(self, default_type: str) -> str:
        """The bytes as a ``data:`` URL (``default_type`` when the MIME type is unknown)."""
        kind = (self.mime_type or default_type).split(";")[0].strip()
        return f"data:{kind};base64,{base64.b64encode(self.data).decode()}"


class MediaSource(Protocol):
    """Downloads a contact's media through the channel it came from."""

    async def fetch(
        self, tenant_id: str, channel_id: str, media: InboundMedia, *, max_bytes: int
    ) -> MediaFile:
        """The media's bytes, at most ``max_bytes``; ``MediaUnavailable`` when it cannot be."""
        ...


class Transcriber(Protocol):
    """Turns audio into text."""

    async def transcribe(
        self, audio: MediaFile, *, model: str, filename: str, language: str, profile: str
    ) -> str:
        """The transcript of ``audio``; ``MediaUnavailable`` when there is none."""
        ...
