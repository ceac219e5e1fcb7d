"""Downloading a contact's media from Twilio: a GET of the message's ``MediaUrl``.

With HTTP basic auth (account SID and auth token), which Twilio requires when the account
enforces authentication on media URLs and ignores otherwise; Twilio redirects to where the
file is stored, and the redirect is followed (without the credentials: aiohttp drops the
header when the origin changes).
"""

from __future__ import annotations

import base64

from channels.media_http import FetchedMedia, MediaFetchFailed, MediaHttp
from channels.twilio.config import TwilioChannel
from events.types.inbound_content import InboundMedia


async def fetch_media(channel: TwilioChannel, media: InboundMedia, http: MediaHttp) -> FetchedMedia:
    """The bytes at ``media``'s ``MediaUrl``."""
    where = f"twilio channel '{channel.id}'"
    if channel.account_sid is None:
        raise MediaFetchFailed(f"{where}: account_sid is needed to download media")
    if media.url is None:
        raise MediaFetchFailed(f"{where}: the media has no MediaUrl")
    credentials = f"{channel.account_sid}:{channel.secrets.auth_token.reveal()}"
    auth = {"Authorization": f"Basic {base64.b64encode(credentials.encode()).decode()}"}
    fetched = await http.get_bytes(str(media.url), operation="download media", headers=auth)
    return FetchedMedia(fetched.data, fetched.mime_type or media.mime_type)
