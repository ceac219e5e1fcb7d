"""The channel breaker around outbound sends, with the shared breaker on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from channels.send_breaker import channel_breaker
from channels.send_retry import SendRetryPolicy
from channels.sending_errors import ChannelCircuitOpen, ProviderUnavailable, RateLimited, Rejected
from channels.whatsapp.outbound import WhatsAppCloudConfig, WhatsAppCloudSender
from events.types.reply_parts import ReplyText
from libs.breaker import SharedCircuitBreaker
from libs.keys import KeySpace
from tests.provider_servers import RecordingSleep, Scripted, WhatsAppGraphServer, graph_error

TOKEN = "EAAGm0PX4ZCpsBAtest"
PHONE_NUMBER_ID = "106540352242922"
FAIL_MAX = 3
HI = [ReplyText(text="hi")]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def graph() -> AsyncIterator[WhatsAppGraphServer]:
    async with WhatsAppGraphServer(TOKEN, PHONE_NUMBER_ID) as server:
        yield server


@pytest.fixture
def breaker(redis: aioredis.Redis, keys: KeySpace) -> SharedCircuitBreaker:
    return channel_breaker(redis, keys, "wa-main", fail_max=FAIL_MAX, reset_timeout_s=60)


def build(
    graph: WhatsAppGraphServer,
    session: aiohttp.ClientSession,
    breaker: SharedCircuitBreaker,
    max_attempts: int = 1,
) -> WhatsAppCloudSender:
    config = WhatsAppCloudConfig(
        channel_id="wa-main",
        phone_number_id=PHONE_NUMBER_ID,
        access_token=TOKEN,
        base_url=graph.base_url,
    )
    retry = SendRetryPolicy(
        max_attempts=max_attempts,
        backoff_initial_s=0.01,
        backoff_max_s=0.01,
        sleep=RecordingSleep(),
    )
    return WhatsAppCloudSender(config, session, breaker=breaker, retry=retry, timeout_s=5)


async def test_repeated_5xx_open_the_breaker_which_then_refuses_without_calling(
    graph: WhatsAppGraphServer,
    session: aiohttp.ClientSession,
    breaker: SharedCircuitBreaker,
    redis: aioredis.Redis,
    keys: KeySpace,
) -> None:
    sender = build(graph, session, breaker)
    graph.script(*[graph_error(131000, "Something went wrong", status=500)] * FAIL_MAX)
    for _ in range(FAIL_MAX):
        with pytest.raises(ProviderUnavailable):
            await sender.send("5511987654321", HI, reply_id="reply-1")
    assert breaker.state == "open"
    with pytest.raises(ChannelCircuitOpen, match="circuit breaker 'channel:wa-main' is open") as e:
        await sender.send("5511987654321", HI, reply_id="reply-1")
    assert e.value.retryable
    assert len(graph.requests) == FAIL_MAX
    # Another replica's breaker reads the shared state and refuses too.
    other = channel_breaker(redis, keys, "wa-main", fail_max=FAIL_MAX, reset_timeout_s=60)
    with pytest.raises(ChannelCircuitOpen):
        await build(graph, session, other).send("5511987654321", HI, reply_id="reply-2")
    assert len(graph.requests) == FAIL_MAX


async def test_an_open_breaker_stops_the_retries_of_a_send(
    graph: WhatsAppGraphServer, session: aiohttp.ClientSession, breaker: SharedCircuitBreaker
) -> None:
    sender = build(graph, session, breaker, max_attempts=10)
    graph.script(*[Scripted(503, {"error": {"message": "down", "code": 2}})] * 10)
    with pytest.raises(ChannelCircuitOpen):
        await sender.send("5511987654321", HI, reply_id="reply-1")
    assert len(graph.requests) == FAIL_MAX


async def test_permanent_rejections_and_rate_limits_do_not_count_as_failures(
    graph: WhatsAppGraphServer, session: aiohttp.ClientSession, breaker: SharedCircuitBreaker
) -> None:
    sender = build(graph, session, breaker)
    graph.script(*[graph_error(131026, "Message undeliverable")] * (FAIL_MAX + 2))
    for _ in range(FAIL_MAX + 2):
        with pytest.raises(Rejected):
            await sender.send("5511987654321", HI, reply_id="reply-1")
    graph.script(*[graph_error(130429, "Rate limit hit", status=429)] * (FAIL_MAX + 2))
    for _ in range(FAIL_MAX + 2):
        with pytest.raises(RateLimited):
            await sender.send("5511987654321", HI, reply_id="reply-1")
    assert breaker.state == "closed"
    assert breaker.fail_counter == 0
    assert len(await sender.send("5511987654321", HI, reply_id="reply-1")) == 1
