"""The turn's messages as the model reads them: voice notes transcribed, images shown.

Before the model sees a turn, each inbound message becomes a ``UserMessage``:

- a voice note or audio, when the profile has ``transcribe_audio``: its stored transcript, or
  one made now (fetched through the channel, transcribed, stored with the message so a
  redelivery or a later turn never pays for it twice);
- an image, when the profile has ``vision`` and its model is not the offline one: the caption
  (if any) and the image as a ``data:`` URL of the fetched bytes. Not the provider's URL:
  WhatsApp's and Twilio's need our credentials, Telegram's holds the bot token, and all of
  them expire, so the model's provider could not (or must not) fetch them. The bytes are
  capped by the profile's ``media_max_bytes`` and at most ``MAX_IMAGES`` per turn;
- anything else as ``ai_agent.inbound`` reads it (a caption stands for its media).

When no message of the turn is left readable, ``Prepared.cannot`` names what the agent says
instead (a phrase of ``ai_agent.phrases``): that it cannot listen or see, or that fetching or
transcribing failed just now and the contact could write instead. Never silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog

from ai_agent.inbound import InboundText, TurnInbound, keep_transcript
from ai_agent.llm import UserMessage
from ai_agent.media import MediaSource, MediaUnavailable, Transcriber
from tool_gateway.config import AgentProfileConfig

_log = structlog.get_logger(__name__)

MAX_IMAGES = 4
"""Images shown to the model per turn; more are described by their caption only."""
VISIBLE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
"""What vision models take (OpenAI's list)."""

_AUDIO_NAMES = {"audio/ogg": "voice.ogg", "audio/mpeg": "audio.mp3", "audio/mp4": "audio.m4a"}


@dataclass(frozen=True, slots=True)
class Prepared:
    """The turn's messages by seq, and, when none is readable, the phrase to answer with."""

    messages: dict[int, UserMessage]
    cannot: str | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    message: UserMessage | None
    failed: bool = False


class TurnMedia:
    """Prepares turns; ``source`` fetches media (None: no channel can), ``transcriber``
    transcribes (None: no provider is configured)."""

    def __init__(
        self, pool: asyncpg.Pool, source: MediaSource | None, transcriber: Transcriber | None
    ) -> None:
        self._pool = pool
        self._source = source
        self._transcriber = transcriber

    async def prepare(
        self,
        tenant_id: str,
        conversation_id: str,
        channel_id: str,
        inbound: TurnInbound,
        profile: AgentProfileConfig,
        *,
        can_see: bool,
    ) -> Prepared:
        """Each message for the model, fetching and transcribing what the profile allows."""
        messages: dict[int, UserMessage] = {}
        failed_audio = failed_image = readable = False
        images = 0
        where = (tenant_id, conversation_id, channel_id)
        for item in inbound.messages:
            if item.listenable and item.unreadable and profile.transcribe_audio:
                outcome = await self._listen(where, item, profile)
                failed_audio = failed_audio or outcome.failed
            elif item.media_kind == "image" and can_see and images < MAX_IMAGES:
                outcome = await self._look(where, item, profile)
                if outcome.message is not None and outcome.message.images:
                    images += 1
                failed_image = failed_image or outcome.failed
            else:
                outcome = _Outcome(UserMessage(content=item.text) if item.text else None)
            readable = readable or outcome.message is not None
            messages[item.seq] = outcome.message or UserMessage(
                content=_described(item, outcome.failed)
            )
        if readable or not inbound.messages:
            return Prepared(messages, None)
        return Prepared(messages, _cannot(inbound, failed_audio, failed_image))

    async def _listen(
        self, where: tuple[str, str, str], item: InboundText, profile: AgentProfileConfig
    ) -> _Outcome:
        if item.transcript:
            return _Outcome(UserMessage(content=item.transcript))
        if item.media is None or self._source is None or self._transcriber is None:
            _log.warning("voice note not transcribed: no media source or transcriber", seq=item.seq)
            return _Outcome(None, failed=True)
        tenant_id, conversation_id, channel_id = where
        try:
            audio = await self._source.fetch(
                tenant_id, channel_id, item.media, max_bytes=profile.media_max_bytes
            )
            mime_type = audio.mime_type or item.media.mime_type or "audio/ogg"
            transcript = await self._transcriber.transcribe(
                audio,
                model=profile.transcription_model,
                filename=_AUDIO_NAMES.get(mime_type.split(";")[0], "voice.ogg"),
                language=profile.language,
                profile=profile.profile,
            )
        except MediaUnavailable as exc:
            _log.warning("voice note not transcribed", seq=item.seq, reason=str(exc))
            return _Outcome(None, failed=True)
        await keep_transcript(self._pool, tenant_id, conversation_id, item.seq, transcript)
        return _Outcome(UserMessage(content=transcript))

    async def _look(
        self, where: tuple[str, str, str], item: InboundText, profile: AgentProfileConfig
    ) -> _Outcome:
        caption = item.text or ""
        if item.media is None or self._source is None:
            return _Outcome(UserMessage(content=caption) if caption else None, failed=True)
        tenant_id, _conversation_id, channel_id = where
        try:
            image = await self._source.fetch(
                tenant_id, channel_id, item.media, max_bytes=profile.media_max_bytes
            )
        except MediaUnavailable as exc:
            _log.warning("image not shown to the model", seq=item.seq, reason=str(exc))
            return _Outcome(UserMessage(content=caption) if caption else None, failed=True)
        mime_type = (image.mime_type or item.media.mime_type or "").split(";")[0].strip()
        if mime_type not in VISIBLE_TYPES:
            _log.warning("image not shown: not a type models take", seq=item.seq, type=mime_type)
            return _Outcome(UserMessage(content=caption) if caption else None, failed=True)
        return _Outcome(UserMessage(content=caption, images=(image.data_url(mime_type),)))


def _described(item: InboundText, failed: bool) -> str:
    """The mark of a media the model cannot take (so it knows something was sent)."""
    kind = item.media_kind or "media"
    return f"[{kind} without text{', not available just now' if failed else ''}]"


def _cannot(inbound: TurnInbound, failed_audio: bool, failed_image: bool) -> str:
    """The phrase for a turn of media only, none of which the model can take."""
    if failed_audio:
        return "could_not_listen"
    if failed_image:
        return "could_not_see"
    heard_audio = any(item.listenable for item in inbound.messages)
    return "cannot_listen" if heard_audio else "cannot_see"
