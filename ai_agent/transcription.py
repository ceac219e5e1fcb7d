"""Transcribing voice notes through an OpenAI-compatible ``POST /audio/transcriptions``.

OpenAI, Azure, vLLM, LocalAI and faster-whisper servers speak it: a multipart upload of the
file and the model name, answered ``{"text": ...}``. One attempt with a timeout: a voice note
that cannot be transcribed now is answered by asking the contact to write, which is faster
than retrying. Counted in the ``ai_requests_total`` and ``ai_request_duration_seconds``
metrics under the transcription model's name.
"""

from __future__ import annotations

import asyncio
import time

import openai
from openai import AsyncOpenAI

from ai_agent.media import MediaFile, MediaUnavailable
from libs.observability.metrics import AI_REQUEST_DURATION, AI_REQUESTS
from libs.observability.tracing import outgoing_trace_headers

TRANSCRIPT_MAX_CHARS = 16_384
"""The longest transcript kept (the ``messages.transcript`` column's bound)."""


class OpenAITranscriber:
    """``client.audio.transcriptions.create`` with a timeout; the caller closes ``client``."""

    def __init__(self, client: AsyncOpenAI, *, timeout_s: float = 60.0) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self._client = client.with_options(max_retries=0)
        self._timeout_s = timeout_s

    async def transcribe(
        self, audio: MediaFile, *, model: str, filename: str, language: str, profile: str
    ) -> str:
        """The transcript; ``MediaUnavailable`` naming the cause when there is none."""
        started = time.monotonic()
        outcome = "unavailable"
        try:
            async with asyncio.timeout(self._timeout_s):
                answer = await self._client.audio.transcriptions.create(
                    model=model,
                    file=(filename, audio.data, audio.mime_type or "application/octet-stream"),
                    # ISO 639-1, as the endpoint wants: "pt" of "pt-BR".
                    language=language.split("-")[0].lower(),
                    timeout=self._timeout_s,
                    extra_headers=outgoing_trace_headers(),
                )
            outcome = "success"
            text = answer.text.strip()
            if not text:
                raise MediaUnavailable(f"transcription model '{model}' heard no words")
            return text[:TRANSCRIPT_MAX_CHARS]
        except TimeoutError as exc:
            raise MediaUnavailable(
                f"transcription model '{model}' did not answer within {self._timeout_s:.3g}s"
            ) from exc
        except openai.APIStatusError as exc:
            outcome = "rejected" if 400 <= exc.status_code < 500 else "unavailable"
            raise MediaUnavailable(
                f"transcription model '{model}' failed with HTTP {exc.status_code}: {exc.message}"
            ) from exc
        except openai.OpenAIError as exc:
            raise MediaUnavailable(f"transcription model '{model}' failed: {exc}") from exc
        finally:
            AI_REQUESTS.labels(model, profile, outcome).inc()
            AI_REQUEST_DURATION.labels(model, profile).observe(time.monotonic() - started)
