"""Downloading a contact's media from the WhatsApp Cloud API.

Two requests, both with the access token as a Bearer: ``GET {base}/{version}/{media_id}``
answers the media's short-lived download URL (with its size and MIME type), and a GET of that
URL answers the bytes. The announced size is checked before downloading, and the SHA-256 the
webhook gave afterwards.
"""

from __future__ import annotations

import hashlib

from channels.media_http import FetchedMedia, MediaFetchFailed, MediaHttp
from channels.whatsapp.config import WhatsAppChannel
from events.types.inbound_content import InboundMedia


async def fetch_media(
    channel: WhatsAppChannel, media: InboundMedia, http: MediaHttp
) -> FetchedMedia:
    """The bytes of ``media`` (by its ``media_id``)."""
    where = f"whatsapp channel '{channel.id}'"
    token = channel.secrets.access_token
    if token is None:
        raise MediaFetchFailed(f"{where}: secrets.access_token is needed to download media")
    if media.media_id is None:
        raise MediaFetchFailed(f"{where}: the media has no media_id to download it by")
    auth = {"Authorization": f"Bearer {token.reveal()}"}
    base = str(channel.api_base_url).rstrip("/")
    found = await http.get_json(
        f"{base}/{channel.api_version}/{media.media_id}", operation="media url", headers=auth
    )
    url = found.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise MediaFetchFailed(f"{where} (media url) gave no download URL for the media")
    announced = found.get("file_size")
    size = int(str(announced)) if str(announced).isdigit() else None  # Meta sends a string
    if size is not None and size > http.max_bytes:
        raise MediaFetchFailed(
            f"{where}: the media is larger than {http.max_bytes} bytes ({size} bytes)"
        )
    fetched = await http.get_bytes(url, operation="download media", headers=auth)
    if media.sha256 is not None and hashlib.sha256(fetched.data).hexdigest() != media.sha256:
        raise MediaFetchFailed(f"{where}: the downloaded media does not match its SHA-256")
    mime_type = found.get("mime_type")
    return FetchedMedia(
        fetched.data, mime_type if isinstance(mime_type, str) else fetched.mime_type
    )
