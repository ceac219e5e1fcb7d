"""Fetching what a contact sent (a voice note, an image) from the channel's provider.

Each provider declares how in its folder (``channels/<provider>/media.py``, the
``fetch_media`` of its ``ChannelProvider``): WhatsApp Cloud asks the Graph API for the media's
URL and downloads it with the access token, Telegram asks ``getFile`` for the file's path,
Twilio downloads ``MediaUrl`` with basic auth, the generic app and Chatwoot give a URL.
``ChannelMedia`` finds the configured channel and its provider for a message, so nothing here
names a provider. The requests are bounded by ``channels.media_http.MediaHttp``.
"""

from __future__ import annotations

import aiohttp

from channels.config import ChannelsConfig
from channels.media_http import FetchedMedia, MediaFetchFailed, MediaHttp
from channels.registry import PROVIDERS
from events.types.inbound_content import InboundMedia

__all__ = ["ChannelMedia", "FetchedMedia", "MediaFetchFailed"]


class ChannelMedia:
    """Fetches media of any configured channel through its provider's ``fetch_media``."""

    def __init__(
        self, config: ChannelsConfig, session: aiohttp.ClientSession, *, timeout_s: float = 20.0
    ) -> None:
        self._channels = {
            (tenant.id, channel.id): channel
            for tenant in config.tenants
            for channel in tenant.channels
        }
        self._session = session
        self._timeout_s = timeout_s

    async def fetch(
        self, tenant_id: str, channel_id: str, media: InboundMedia, *, max_bytes: int
    ) -> FetchedMedia:
        """The bytes of ``media``, sent through ``channel_id`` of ``tenant_id``."""
        channel = self._channels.get((tenant_id, channel_id))
        if channel is None:
            raise MediaFetchFailed(
                f"tenant '{tenant_id}' has no channel '{channel_id}' configured to fetch media from"
            )
        provider = PROVIDERS.of(channel)
        if provider.fetch_media is None:
            raise MediaFetchFailed(f"{channel.provider} channels cannot fetch media")
        describe = f"{channel.provider} channel '{channel.id}'"
        http = MediaHttp(
            self._session, describe=describe, max_bytes=max_bytes, timeout_s=self._timeout_s
        )
        return await provider.fetch_media(channel, media, http)
