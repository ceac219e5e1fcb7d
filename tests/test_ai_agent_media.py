"""Voice notes and images, end to end: the agent fetches them through the channel (local
servers that serve media as WhatsApp and Telegram do), transcribes audio with the real
``openai`` SDK against the scripted server's ``/v1/audio/transcriptions``, shows images to a
vision model as ``data:`` URLs, and answers asking for text whenever it cannot."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from channels.config import ChannelsConfig
from events.types.reply_parts import ReplyText
from libs.keys import KeySpace
from tests.ai_agent_support import (
    BOT_TOKEN,
    WA_TOKEN,
    add_inbound,
    handoff,
    media_channels,
    replies,
    resources_for,
    running_consumers,
    settings_for,
    wait_for_replies,
)
from tests.llm_script import Failure, SeenRequest, Text
from tests.llm_server import ScriptedOpenAIServer
from tests.media_servers import StoredFile, TelegramFileServer, WhatsAppMediaServer
from tests.tool_support import SeededConversation, seed_conversation

VOICE = StoredFile(b"OggS-voice-note-" * 128, "audio/ogg")
PHOTO = StoredFile(b"\x89PNG\r\n\x1a\n" + b"pixels" * 100, "image/png")
LISTENS = {"tenant": "acme", "profile": "support", "transcribe_audio": True, "language": "en"}
SEES = {"tenant": "acme", "profile": "support", "vision": True, "language": "en"}


@dataclasses.dataclass
class Peers:
    llm: ScriptedOpenAIServer
    whatsapp: WhatsAppMediaServer
    telegram: TelegramFileServer
    channels: ChannelsConfig


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    async with (
        ScriptedOpenAIServer() as llm,
        WhatsAppMediaServer(WA_TOKEN) as whatsapp,
        TelegramFileServer(BOT_TOKEN) as telegram,
    ):
        whatsapp.files["m-voice"] = VOICE
        telegram.files["f-photo"] = PHOTO
        channels = media_channels(whatsapp.base_url, telegram.base_url)
        yield Peers(llm, whatsapp, telegram, channels)


async def _telegram_conversation(pool: asyncpg.Pool) -> SeededConversation:
    seeded = await seed_conversation(pool)
    await pool.execute(
        "INSERT INTO channels (tenant_id, channel_id, provider, external_id)"
        " VALUES ('acme', 'acme-tg', 'telegram', '654321')"
    )
    return dataclasses.replace(seeded, channel_id="acme-tg")


async def _one_reply(redis: aioredis.Redis, keys: KeySpace) -> str:
    [reply] = await replies(redis, keys)
    assert not reply.handoff, reply.handoff_reason
    [part] = reply.parts
    assert isinstance(part, ReplyText)
    return part.text


def _echo_user(seen: SeenRequest) -> Text:
    return Text("heard: " + seen.contents("user")[-1])


async def test_a_whatsapp_voice_note_is_transcribed_stored_and_answered(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool, peers: Peers
) -> None:
    seeded = await seed_conversation(pg_pool)
    voice = {"kind": "media", "media_kind": "voice", "media_id": "m-voice", "sha256": VOICE.sha256}
    await add_inbound(pg_pool, seeded, 1, voice)
    peers.llm.transcribe("I need to move my appointment to Friday")
    peers.llm.script(_echo_user)
    settings = settings_for(peers.llm)
    resources = resources_for(redis, keys, pg_pool, settings, [LISTENS], peers.channels)
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    assert await _one_reply(redis, keys) == "heard: I need to move my appointment to Friday"
    [upload] = peers.llm.uploads
    assert upload.data == VOICE.data
    assert (upload.fields["model"], upload.fields["language"]) == ("whisper-1", "en")
    assert upload.filename == "voice.ogg"
    stored = await pg_pool.fetchval("SELECT transcript FROM messages WHERE seq = 1")
    assert stored == "I need to move my appointment to Friday"


async def test_a_telegram_image_is_shown_to_a_vision_model_as_a_data_url(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool, peers: Peers
) -> None:
    seeded = await _telegram_conversation(pg_pool)
    photo = {
        "kind": "media",
        "media_kind": "image",
        "media_id": "f-photo",
        "mime_type": "image/png",
        "caption": "is this the right part?",
    }
    await add_inbound(pg_pool, seeded, 1, photo)
    peers.llm.script(Text("Yes, that is the blue filter."))
    settings = settings_for(peers.llm)
    resources = resources_for(redis, keys, pg_pool, settings, [SEES], peers.channels)
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    assert await _one_reply(redis, keys) == "Yes, that is the blue filter."
    [request] = peers.llm.requests
    user = [m for m in request.messages if m["role"] == "user"][-1]
    data_url = "data:image/png;base64," + base64.b64encode(PHOTO.data).decode()
    assert user["content"] == [
        {"type": "text", "text": "is this the right part?"},
        {"type": "image_url", "image_url": {"url": data_url}},
    ]
    assert BOT_TOKEN not in str(request.body), "the provider's URL (with the token) stays here"


@pytest.mark.parametrize(
    ("profile", "media_id", "transcripts", "expected"),
    [
        (
            LISTENS | {"transcribe_audio": False},
            "m-voice",
            ("never asked",),
            "I cannot listen to audio messages yet. Could you write your message, please?",
        ),
        (
            LISTENS,
            "m-gone",
            ("never asked",),
            "I could not listen to your audio just now. Could you write your message, please?",
        ),
        (
            LISTENS,
            "m-voice",
            (Failure(500, "The server had an error", "server_error"),),
            "I could not listen to your audio just now. Could you write your message, please?",
        ),
        (
            LISTENS | {"media_max_bytes": 1_024},
            "m-voice",
            ("never asked",),
            "I could not listen to your audio just now. Could you write your message, please?",
        ),
    ],
    ids=["not-enabled", "fetch-fails", "transcription-fails", "too-large"],
)
async def test_a_voice_note_that_cannot_be_heard_is_answered_asking_for_text(
    redis: aioredis.Redis,
    keys: KeySpace,
    pg_pool: asyncpg.Pool,
    peers: Peers,
    profile: dict[str, Any],
    media_id: str,
    transcripts: tuple[str | Failure, ...],
    expected: str,
) -> None:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(
        pg_pool, seeded, 1, {"kind": "media", "media_kind": "voice", "media_id": media_id}
    )
    peers.llm.transcribe(*transcripts)
    settings = settings_for(peers.llm)
    resources = resources_for(redis, keys, pg_pool, settings, [profile], peers.channels)
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    assert await _one_reply(redis, keys) == expected
    assert peers.llm.requests == [], "no chat request: there was nothing to read"
    assert await pg_pool.fetchval("SELECT transcript FROM messages WHERE seq = 1") is None
    uploaded = [upload.data for upload in peers.llm.uploads]
    assert uploaded == ([VOICE.data] if isinstance(transcripts[0], Failure) else [])


async def test_an_image_the_model_cannot_see_is_answered_asking_for_words(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool, peers: Peers
) -> None:
    seeded = await _telegram_conversation(pg_pool)
    await add_inbound(
        pg_pool, seeded, 1, {"kind": "media", "media_kind": "image", "media_id": "f-gone"}
    )
    settings = settings_for(peers.llm)
    resources = resources_for(redis, keys, pg_pool, settings, [SEES], peers.channels)
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    assert await _one_reply(redis, keys) == (
        "I could not open your image just now. Could you describe it in writing, please?"
    )
    assert peers.llm.requests == []


async def test_a_voice_note_beside_a_text_reaches_the_model_marked_when_it_cannot_be_heard(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool, peers: Peers
) -> None:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(pg_pool, seeded, 1, {"kind": "text", "text": "hello, about my order"})
    await add_inbound(
        pg_pool, seeded, 2, {"kind": "media", "media_kind": "voice", "media_id": "m-gone"}
    )
    peers.llm.script(lambda seen: Text(" | ".join(seen.contents("user"))))
    settings = settings_for(peers.llm)
    resources = resources_for(redis, keys, pg_pool, settings, [LISTENS], peers.channels)
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1, 2))
        await wait_for_replies(redis, keys, 1)

    assert await _one_reply(redis, keys) == (
        "hello, about my order | [voice without text, not available just now]"
    )


async def test_a_stored_transcript_is_used_without_fetching_or_transcribing_again(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool, peers: Peers
) -> None:
    seeded = await seed_conversation(pg_pool)
    await add_inbound(
        pg_pool, seeded, 1, {"kind": "media", "media_kind": "voice", "media_id": "m-voice"}
    )
    await pg_pool.execute("UPDATE messages SET transcript = 'already heard' WHERE seq = 1")
    peers.llm.script(_echo_user)
    settings = settings_for(peers.llm)
    resources = resources_for(redis, keys, pg_pool, settings, [LISTENS], peers.channels)
    async with running_consumers(resources):
        await resources.publisher.publish(handoff(seeded, 1))
        await wait_for_replies(redis, keys, 1)

    assert await _one_reply(redis, keys) == "heard: already heard"
    assert (peers.llm.uploads, peers.whatsapp.paths) == ([], [])
