"""One provider request on the wire: timeout, the channel's breaker, retries.

Each attempt runs under the breaker; only availability failures (``ProviderUnavailable``:
5xx, timeouts, connection errors) leave the breaker's block as errors, so a provider that
answers "invalid recipient" or "rate limited" is up and never trips it. The provider's answer
is classified by the adapter, which knows the provider's error shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from channels.send_breaker import ChannelBreaker, NoBreaker
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import ChannelCircuitOpen, ProviderUnavailable, SendError
from libs.errors import CircuitOpen
from libs.observability.tracing import outgoing_trace_headers
from libs.retry_after import parse_retry_after

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

Signer = Callable[[bytes], Mapping[str, str]]
"""Headers that authenticate a body, computed again for each attempt (they hold a timestamp)."""


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """A POST to a provider; ``operation`` names it in errors (the URL may hold a token)."""

    operation: str
    url: str
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    signer: Signer | None = field(default=None, repr=False)


def json_body(payload: object) -> bytes:
    """Compact UTF-8 JSON, the bytes that go on the wire (and that a signature covers)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class ProviderReply:
    """The provider's answer to one attempt."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def ok(self) -> bool:
        """Whether the HTTP status is a success (2xx)."""
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body decoded as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or an empty one when it is anything else."""
        decoded = self.json()
        return decoded if isinstance(decoded, dict) else {}

    def retry_after_s(self) -> float | None:
        """The ``Retry-After`` header in seconds, when present and valid."""
        return parse_retry_after(self.headers.get("Retry-After"))

    def snippet(self, limit: int = 200) -> str:
        """The start of the body, for an error message about an unexpected answer."""
        return self.body[:limit].decode(errors="replace") or "(empty body)"


Classifier = Callable[[ProviderReply, ProviderRequest], SendError | None]
"""Maps an answer to the error it means, or ``None`` when the provider accepted the request."""


class ProviderHttpClient:
    """Sends one channel's requests through a shared ``aiohttp.ClientSession``.

    ``timeout_s`` bounds each attempt (connect, send, read); ``retry`` bounds the attempts and
    their total time; ``breaker`` is the channel's.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        describe: str,
        classify: Classifier,
        breaker: ChannelBreaker | None = None,
        retry: SendRetryPolicy | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"{describe}: timeout_s must be positive, got {timeout_s}")
        self._session = session
        self._describe = describe
        self._classify = classify
        self._breaker: ChannelBreaker = breaker if breaker is not None else NoBreaker()
        self._retry = retry if retry is not None else SendRetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def post(self, request: ProviderRequest) -> ProviderReply:
        """POST ``request`` until the provider accepts it; raise the ``SendError`` it ends with."""
        return await self._retry.run(lambda: self._attempt(request))

    async def _attempt(self, request: ProviderRequest) -> ProviderReply:
        error: SendError | None = None
        try:
            async with self._breaker.guard():
                reply = await self._exchange(request)
                error = self._classify(reply, request)
                if isinstance(error, ProviderUnavailable):
                    raise error
        except CircuitOpen as exc:
            raise ChannelCircuitOpen(
                f"{self._describe} ({request.operation}) was not called: {exc}"
            ) from exc
        if error is not None:
            raise error
        return reply

    async def _exchange(self, request: ProviderRequest) -> ProviderReply:
        headers = CIMultiDict(request.headers)
        headers["Content-Type"] = request.content_type
        if request.signer is not None:
            headers.update(request.signer(request.body))
        # The reply's trace goes on to the provider: one trace id from webhook to send.
        headers.update(outgoing_trace_headers())
        what = f"{self._describe} ({request.operation})"
        try:
            async with self._session.post(
                request.url,
                data=request.body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return ProviderReply(response.status, response.headers, body)
        except TimeoutError as exc:
            raise ProviderUnavailable(
                f"{what} did not answer within {self._timeout.total}s"
            ) from exc
        except aiohttp.ClientError as exc:
            # Some client errors quote the URL, and a Telegram URL holds the bot token.
            reason = str(exc).replace(request.url, "<url>")
            raise ProviderUnavailable(
                f"{what} could not be reached: {type(exc).__name__}: {reason}"
            ) from None
