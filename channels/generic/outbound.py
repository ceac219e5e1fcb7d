"""Sending to an app on the generic channel: one signed JSON POST per reply.

The body names the reply and lists all its parts (``reply_id``, ``recipient``, ``parts``, each
part as the event contract defines it), so the app receives a reply whole. It is signed like
generic inbound webhooks: ``X-Atende-Timestamp`` (unix seconds) and ``X-Atende-Signature:
sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>``, fresh for each attempt. The reply id
is also in ``X-Atende-Reply-Id`` and ``Idempotency-Key``, so an app can drop a repeat before
parsing. The app may answer ``{"message_ids": [...]}``, one per part; otherwise the ids are
``{reply_id}:{part_index}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
from pydantic import TypeAdapter

from channels.http_sender import HttpSender
from channels.outbound import SentMessage
from channels.provider_http import ProviderReply, ProviderRequest, json_body
from channels.send_breaker import ChannelBreaker
from channels.send_pacing import RecipientPacer
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import SendError, error_for_status
from channels.timestamped_hmac import sign
from events.types.reply_parts import ReplyPart

TIMESTAMP_HEADER = "X-Atende-Timestamp"
SIGNATURE_HEADER = "X-Atende-Signature"

_PARTS = TypeAdapter(tuple[ReplyPart, ...])


@dataclass(frozen=True, slots=True)
class GenericConfig:
    """Where the app receives replies, and the secret shared with it."""

    channel_id: str
    callback_url: str
    signing_secret: str = field(repr=False)

    def __post_init__(self) -> None:
        where = f"generic channel '{self.channel_id}'"
        if not self.callback_url.startswith(("http://", "https://")):
            raise ValueError(f"{where}: callback_url must be an http(s) URL")
        if not self.signing_secret:
            raise ValueError(f"{where}: signing_secret is empty")


class GenericSender(HttpSender[GenericConfig]):
    """A ``ChannelSender`` that posts each reply to the app's callback URL."""

    provider_label = "generic"

    def __init__(
        self,
        config: GenericConfig,
        session: aiohttp.ClientSession,
        *,
        breaker: ChannelBreaker | None = None,
        retry: SendRetryPolicy | None = None,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        pacer: RecipientPacer | None = None,
    ) -> None:
        super().__init__(
            config, session, breaker=breaker, retry=retry, timeout_s=timeout_s, pacer=pacer
        )
        self._secret = config.signing_secret.encode()
        self._clock = clock

    async def send(
        self, recipient: str, parts: Sequence[ReplyPart], *, reply_id: str
    ) -> list[SentMessage]:
        """Post the whole reply at once; every part is delivered or none is."""
        payload = {
            "type": "reply",
            "channel_id": self.channel_id,
            "reply_id": reply_id,
            "recipient": recipient,
            "parts": _PARTS.dump_python(tuple(parts), mode="json"),
        }
        request = ProviderRequest(
            operation="post reply",
            url=self._config.callback_url,
            body=json_body(payload),
            headers={"X-Atende-Reply-Id": reply_id, "Idempotency-Key": reply_id},
            signer=self._signature_headers,
        )
        reply = await self._http.post(request)
        ids = reply.json_object().get("message_ids")
        if not (isinstance(ids, list) and len(ids) == len(parts)):
            ids = [f"{reply_id}:{index}" for index in range(len(parts))]
        return [SentMessage(str(ids[i]), reply_id, i) for i in range(len(parts))]

    def _signature_headers(self, body: bytes) -> dict[str, str]:
        timestamp = int(self._clock())
        return {
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }

    def _classify(self, reply: ProviderReply, request: ProviderRequest) -> SendError | None:
        if reply.ok:
            return None
        error = reply.json_object().get("error")
        code: str | None = None
        detail = reply.snippet()
        if isinstance(error, dict):
            code = str(error["code"]) if "code" in error else None
            detail = f"{code or 'error'} ({error.get('message', 'no message')})"
        elif isinstance(error, str):
            detail = error
        return error_for_status(
            reply.status,
            what=f"{self._describe} ({request.operation})",
            detail=detail,
            provider_code=code,
            retry_after_s=reply.retry_after_s(),
        )
