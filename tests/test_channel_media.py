"""Downloading contacts' media through each provider's ``fetch_media``, against local servers
that serve media as the providers do: credentials, size caps, integrity, no token in errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from channels.config import ChannelsConfig
from channels.media import ChannelMedia, MediaFetchFailed
from events.types.inbound_content import InboundMedia
from tests.media_servers import (
    PlainFileServer,
    StoredFile,
    TelegramFileServer,
    WhatsAppMediaServer,
)

WA_TOKEN = "EAAG-test-token"
BOT_TOKEN = "123456:AbC-telegram-token"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-auth-token"
VOICE = StoredFile(b"OggS" + bytes(range(256)) * 40, "audio/ogg")
PHOTO = StoredFile(b"\xff\xd8\xff\xe0" + b"jpeg" * 500, "image/jpeg")
ENV = {"WA": "wa-secret", "WA_TOKEN": WA_TOKEN, "BOT": BOT_TOKEN, "TG": "tg", "TW": AUTH_TOKEN}


def _config(wa: str, tg: str) -> ChannelsConfig:
    channels: list[dict[str, Any]] = [
        {
            "id": "wa",
            "provider": "whatsapp",
            "api_base_url": wa,
            "secrets": {
                "app_secret": {"env": "WA"},
                "verify_token": {"env": "WA"},
                "access_token": {"env": "WA_TOKEN"},
            },
        },
        {
            "id": "wa-no-token",
            "provider": "whatsapp",
            "secrets": {"app_secret": {"env": "WA"}, "verify_token": {"env": "WA"}},
        },
        {
            "id": "tg",
            "provider": "telegram",
            "api_base_url": tg,
            "secrets": {"secret_token": {"env": "TG"}, "bot_token": {"env": "BOT"}},
        },
        {
            "id": "tw",
            "provider": "twilio",
            "account_sid": ACCOUNT_SID,
            "secrets": {"auth_token": {"env": "TW"}},
        },
        {"id": "app", "provider": "generic", "secrets": {"signing_secret": {"env": "TG"}}},
    ]
    data = {"tenants": [{"id": "acme", "channels": channels}]}
    return ChannelsConfig.model_validate(data, context={"env": ENV})


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def whatsapp() -> AsyncIterator[WhatsAppMediaServer]:
    async with WhatsAppMediaServer(WA_TOKEN) as server:
        server.files["m-voice"] = VOICE
        yield server


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramFileServer]:
    async with TelegramFileServer(BOT_TOKEN) as server:
        server.files["f-photo"] = PHOTO
        yield server


@pytest.fixture
def media(
    session: aiohttp.ClientSession, whatsapp: WhatsAppMediaServer, telegram: TelegramFileServer
) -> ChannelMedia:
    return ChannelMedia(_config(whatsapp.base_url, telegram.base_url), session, timeout_s=5)


async def test_whatsapp_media_is_looked_up_then_downloaded_with_the_access_token(
    media: ChannelMedia, whatsapp: WhatsAppMediaServer
) -> None:
    voice = InboundMedia(media_kind="voice", media_id="m-voice", sha256=VOICE.sha256)
    fetched = await media.fetch("acme", "wa", voice, max_bytes=1_000_000)
    assert (fetched.data, fetched.mime_type) == (VOICE.data, "audio/ogg")
    assert whatsapp.paths == ["/v21.0/m-voice", "/lookaside/m-voice"]


@pytest.mark.parametrize(
    ("channel", "voice", "max_bytes", "problem"),
    [
        ("wa", InboundMedia(media_kind="voice", media_id="m-gone"), 10**6, "HTTP 400"),
        ("wa", InboundMedia(media_kind="voice", media_id="m-voice"), 1_000, "larger than 1000"),
        (
            "wa",
            InboundMedia(media_kind="voice", media_id="m-voice", sha256="0" * 64),
            10**6,
            "does not match its SHA-256",
        ),
        ("wa-no-token", InboundMedia(media_kind="voice", media_id="m-voice"), 10**6, "access_tok"),
        ("nowhere", InboundMedia(media_kind="voice", media_id="m-voice"), 10**6, "no channel"),
    ],
)
async def test_a_whatsapp_media_that_cannot_be_had_says_why(
    media: ChannelMedia, channel: str, voice: InboundMedia, max_bytes: int, problem: str
) -> None:
    with pytest.raises(MediaFetchFailed, match=problem):
        await media.fetch("acme", channel, voice, max_bytes=max_bytes)


async def test_telegram_files_are_found_by_get_file_and_the_token_never_shows_in_errors(
    media: ChannelMedia, telegram: TelegramFileServer
) -> None:
    photo = InboundMedia(media_kind="image", media_id="f-photo", mime_type="image/jpeg")
    fetched = await media.fetch("acme", "tg", photo, max_bytes=1_000_000)
    assert (fetched.data, fetched.mime_type) == (PHOTO.data, "image/jpeg")
    assert telegram.paths[1] == f"/file/bot{BOT_TOKEN}/photos/f-photo.jpg"

    gone = InboundMedia(media_kind="image", media_id="f-gone")
    with pytest.raises(MediaFetchFailed) as failed:
        await media.fetch("acme", "tg", gone, max_bytes=1_000_000)
    assert "HTTP 400" in str(failed.value)
    assert BOT_TOKEN not in str(failed.value)


async def test_twilio_media_urls_are_downloaded_with_basic_auth(
    session: aiohttp.ClientSession,
) -> None:
    async with PlainFileServer(basic_auth=(ACCOUNT_SID, AUTH_TOKEN)) as server:
        server.files["ME1"] = PHOTO
        media = ChannelMedia(_config(server.base_url, server.base_url), session)
        photo = InboundMedia(media_kind="image", url=server.url("ME1"))
        fetched = await media.fetch("acme", "tw", photo, max_bytes=1_000_000)
        assert fetched.data == PHOTO.data
        with pytest.raises(MediaFetchFailed, match="HTTP 401"):
            await media.fetch("acme", "app", photo, max_bytes=1_000_000)  # no credentials


async def test_a_body_without_a_length_is_cut_off_at_the_cap(
    session: aiohttp.ClientSession,
) -> None:
    async with PlainFileServer(chunked=True) as server:
        server.files["big"] = PHOTO
        media = ChannelMedia(_config(server.base_url, server.base_url), session)
        photo = InboundMedia(media_kind="image", url=server.url("big"))
        assert (await media.fetch("acme", "app", photo, max_bytes=10_000)).data == PHOTO.data
        with pytest.raises(MediaFetchFailed, match="larger than 1024 bytes"):
            await media.fetch("acme", "app", photo, max_bytes=1_024)
