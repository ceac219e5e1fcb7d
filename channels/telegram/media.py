"""Downloading a contact's file from the Telegram Bot API.

``getFile`` (``GET {base}/bot{token}/getFile?file_id=…``) answers the file's path, and
``GET {base}/file/bot{token}/{file_path}`` the bytes. Both URLs hold the bot token, which is
why ``MediaHttp`` never puts a URL in an error.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from channels.media_http import FetchedMedia, MediaFetchFailed, MediaHttp
from channels.telegram.config import TelegramChannel
from events.types.inbound_content import InboundMedia


async def fetch_media(
    channel: TelegramChannel, media: InboundMedia, http: MediaHttp
) -> FetchedMedia:
    """The bytes of ``media`` (by its ``file_id``, our ``media_id``)."""
    where = f"telegram channel '{channel.id}'"
    token = channel.secrets.bot_token
    if token is None:
        raise MediaFetchFailed(f"{where}: secrets.bot_token is needed to download files")
    if media.media_id is None:
        raise MediaFetchFailed(f"{where}: the media has no file_id to download it by")
    base = f"{str(channel.api_base_url).rstrip('/')}"
    bot = f"bot{token.reveal()}"
    query = urlencode({"file_id": media.media_id})
    answer = await http.get_json(f"{base}/{bot}/getFile?{query}", operation="getFile")
    result = answer.get("result")
    path = result.get("file_path") if isinstance(result, dict) else None
    if answer.get("ok") is not True or not isinstance(path, str) or not path:
        description = answer.get("description") or "no file_path"
        raise MediaFetchFailed(f"{where} (getFile) gave no file to download: {description}")
    size = result.get("file_size") if isinstance(result, dict) else None
    if isinstance(size, int) and size > http.max_bytes:
        raise MediaFetchFailed(
            f"{where}: the media is larger than {http.max_bytes} bytes ({size} bytes)"
        )
    fetched = await http.get_bytes(f"{base}/file/{bot}/{quote(path)}", operation="download file")
    # Telegram serves files as application/octet-stream; the message knows better.
    return FetchedMedia(fetched.data, media.mime_type or fetched.mime_type)
