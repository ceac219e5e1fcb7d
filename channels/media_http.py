"""Bounded HTTP downloads of a contact's media, and what a provider's ``fetch_media`` is.

Every request goes through ``MediaHttp``: a timeout on each request, a size cap checked on the
announced length and again while reading (a provider that announces nothing or lies is cut
off at the cap), at most a few redirects. Failures are ``MediaFetchFailed`` with a sentence
that never holds a URL (a Telegram URL holds the bot token).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from channels.base_config import ChannelBase
from events.types.inbound_content import InboundMedia
from libs.errors import AtendeError

_CHUNK_BYTES = 64 * 1024
_MAX_REDIRECTS = 3
_JSON_MAX_BYTES = 64 * 1024


C_contra = TypeVar("C_contra", bound=ChannelBase, contravariant=True)

MediaFetch = Callable[[C_contra, InboundMedia, "MediaHttp"], Awaitable["FetchedMedia"]]
"""A provider's way to fetch a message's media for a configured channel."""


class MediaFetchFailed(AtendeError):
    """A contact's media could not be fetched from the provider; the message says why."""


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    """The bytes of a media and their MIME type (the provider's, else the message's)."""

    data: bytes = field(repr=False)
    mime_type: str | None


class MediaHttp:
    """Bounded GETs for one fetch: ``max_bytes`` per body, ``timeout_s`` per request."""

    def __init__(
        self, session: aiohttp.ClientSession, *, describe: str, max_bytes: int, timeout_s: float
    ) -> None:
        if max_bytes < 1 or timeout_s <= 0:
            raise ValueError("max_bytes and timeout_s must be positive")
        self._session = session
        self._describe = describe
        self.max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def get_json(
        self, url: str, *, operation: str, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The JSON object ``url`` answers; ``MediaFetchFailed`` for anything else."""
        fetched = await self._get(url, operation, headers, _JSON_MAX_BYTES)
        try:
            decoded = json.loads(fetched.data)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            raise MediaFetchFailed(f"{self._describe} ({operation}) answered something not JSON")
        return decoded

    async def get_bytes(
        self,
        url: str,
        *,
        operation: str,
        headers: Mapping[str, str] | None = None,
    ) -> FetchedMedia:
        """The body ``url`` answers, at most ``max_bytes`` (an ``Authorization`` header is
        dropped by a redirect to another origin)."""
        return await self._get(url, operation, headers, self.max_bytes)

    async def _get(
        self,
        url: str,
        operation: str,
        headers: Mapping[str, str] | None,
        limit: int,
    ) -> FetchedMedia:
        what = f"{self._describe} ({operation})"
        try:
            async with self._session.get(
                url,
                headers=dict(headers or {}),
                timeout=self._timeout,
                max_redirects=_MAX_REDIRECTS,
            ) as response:
                if response.status != 200:
                    snippet = (await response.content.read(200)).decode(errors="replace")
                    raise MediaFetchFailed(f"{what} answered HTTP {response.status}: {snippet}")
                if response.content_length is not None and response.content_length > limit:
                    raise _too_large(what, limit, response.content_length)
                data = await _read_at_most(response, limit, what)
                return FetchedMedia(data, response.headers.get("Content-Type"))
        except TimeoutError as exc:
            raise MediaFetchFailed(f"{what} did not answer within {self._timeout.total}s") from exc
        except aiohttp.ClientError as exc:
            reason = str(exc).replace(url, "<url>")
            raise MediaFetchFailed(
                f"{what} could not be reached: {type(exc).__name__}: {reason}"
            ) from None


async def _read_at_most(response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        body.extend(chunk)
        if len(body) > limit:
            raise _too_large(what, limit, None)
    return bytes(body)


def _too_large(what: str, limit: int, announced: int | None) -> MediaFetchFailed:
    size = f" ({announced} bytes)" if announced is not None else ""
    return MediaFetchFailed(f"{what}: the media is larger than {limit} bytes{size}")


async def fetch_media_url(
    channel: ChannelBase, media: InboundMedia, http: MediaHttp
) -> FetchedMedia:
    """The media at the URL the message gives, fetched without credentials (generic app,
    Chatwoot): for providers whose webhook carries a download URL."""
    if media.url is None:
        raise MediaFetchFailed(f"{channel.provider} channel '{channel.id}': the media has no URL")
    fetched = await http.get_bytes(str(media.url), operation="download media")
    return FetchedMedia(fetched.data, fetched.mime_type or media.mime_type)
