"""Messages to one recipient leave no faster than the channel's pace, shared through Redis;
other recipients are not held back; a slot too far away becomes a RetryLater with its delay.

Time is a clock the test moves by hand (its ``sleep`` advances it), so every assertion is on
the Redis pacing state or on that clock, never on how long something took.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from channels.base_config import RecipientPace
from channels.config import ChannelsConfig
from channels.send_pacing import RedisRecipientPacer
from channels.sending_errors import RateLimited
from consumers.delivery import ChannelParts, build_reply_delivery
from delivery.replies import ReplyDelivery, SendRefused
from delivery.senders import OutboundSenders
from dispatcher.config import ConversationsConfig
from dispatcher.mailbox import Mailbox
from dispatcher.store import DispatcherStore
from events.catalog import CATALOG
from events.partitions import partition_for
from events.types.reply_parts import ReplyText
from libs.errors import RetryLater
from libs.keys import KeySpace
from libs.resources import Resources
from libs.streams import Publisher
from tests.delivery_support import (
    ACCESS_TOKEN,
    CHANNEL,
    CONTACT,
    CONVERSATION,
    PARTITIONS,
    TENANT,
    ManualClock,
    channels_config,
    open_turn,
    reply,
    seed,
    turn_status,
)
from tests.provider_servers import Recorded, WhatsAppGraphServer
from tests.streams_support import fast_settings
from tests.webhook_support import PHONE_NUMBER_ID

OTHER = "5521912345678"


class ClockedGraph(WhatsAppGraphServer):
    """The Graph API server noting, for each message, its recipient and the clock's time."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(ACCESS_TOKEN, PHONE_NUMBER_ID)
        self.clock = clock
        self.arrivals: list[tuple[str, float]] = []

    def accept(self, request: Recorded) -> web.Response:
        self.arrivals.append((request.json()["to"], round(self.clock.t - 1_000.0, 3)))
        return super().accept(request)


def pacer(
    redis: aioredis.Redis, keys: KeySpace, clock: ManualClock, **pace: Any
) -> RedisRecipientPacer:
    return RedisRecipientPacer(
        redis,
        keys,
        tenant_id=TENANT,
        channel_id=CHANNEL,
        pace=RecipientPace(**pace),
        partitions=PARTITIONS,
        clock=clock,
    )


async def next_slot_s(redis: aioredis.Redis, paced: RedisRecipientPacer, recipient: str) -> float:
    """The recipient's next free slot, as Redis holds it, on the test's time axis."""
    raw = await redis.get(paced.key(recipient))
    assert raw is not None
    return int(raw) / 1000 - 1_000.0


async def test_a_reservation_spaces_its_messages_and_records_the_next_slot(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    clock = ManualClock()
    paced = pacer(redis, keys, clock, interval_ms=6_000, burst=1, max_wait_s=30)
    schedule = await paced.reserve(CONTACT, 3)
    assert schedule.delays_s == (0.0, 6.0, 12.0)
    assert await next_slot_s(redis, paced, CONTACT) == 18.0
    assert (await paced.reserve(OTHER, 1)).delays_s == (0.0,), "another recipient waits not"
    assert (await paced.reserve(CONTACT, 1)).delays_s == (18.0,)


async def test_a_burst_leaves_together_and_pays_for_it_after(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    clock = ManualClock()
    paced = pacer(redis, keys, clock, interval_ms=6_000, burst=3, max_wait_s=30)
    assert (await paced.reserve(CONTACT, 4)).delays_s == (0.0, 0.0, 0.0, 6.0)
    clock.t += 6.0
    assert (await paced.reserve(CONTACT, 1)).delays_s == (6.0,)


async def test_a_slot_further_than_the_bound_is_refused_with_its_delay_and_not_taken(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    clock = ManualClock()
    paced = pacer(redis, keys, clock, interval_ms=6_000, burst=1, max_wait_s=5)
    await paced.reserve(CONTACT, 1)
    with pytest.raises(RateLimited) as refused:
        await paced.reserve(CONTACT, 1)
    assert refused.value.retry_after_s == 6.0
    assert await next_slot_s(redis, paced, CONTACT) == 6.0, "the refused send took no slot"


async def test_the_pace_key_is_the_conversations_under_its_partition_tag(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    paced = pacer(redis, keys, ManualClock(), interval_ms=1_000)
    partition = partition_for(TENANT, CONVERSATION, PARTITIONS)
    assert paced.key(CONTACT) == keys.pace(partition, TENANT, CONVERSATION)
    assert f"{{p{partition}}}" in paced.key(CONTACT)


def test_each_provider_has_its_documented_default_and_a_channel_may_override_it() -> None:
    whatsapp = channels_config("http://127.0.0.1:1").tenants[0].channels[0]
    assert whatsapp.recipient_pace() == RecipientPace(interval_ms=6_000, burst=5)
    custom = {"sending": {"recipient_pace": {"interval_ms": 2_000, "burst": 2}}}
    tuned = channels_config("http://127.0.0.1:1", **custom).tenants[0].channels[0]
    assert tuned.recipient_pace() == RecipientPace(interval_ms=2_000, burst=2)
    off = {"sending": {"recipient_pace": {"interval_ms": 0}}}
    assert (
        channels_config("http://127.0.0.1:1", **off).tenants[0].channels[0].recipient_pace() is None
    )


@dataclass
class Paced:
    graph: ClockedGraph
    clock: ManualClock
    parts: ChannelParts
    delivery: ReplyDelivery
    mailbox: Mailbox
    store: DispatcherStore
    pool: asyncpg.Pool


@pytest.fixture
async def paced(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> AsyncIterator[Paced]:
    """Delivery through the real WhatsApp sender: one message per 6 s after a burst of two,
    and a send waits at most 5 s for its slot."""
    await seed(pg_pool, last_inbound_age=timedelta(minutes=1))
    clock = ManualClock()
    pace = {"interval_ms": 6_000, "burst": 2, "max_wait_s": 5}
    async with ClockedGraph(clock) as graph, aiohttp.ClientSession() as session:
        channels: ChannelsConfig = channels_config(graph.base_url, sending={"recipient_pace": pace})
        settings = fast_settings(stream_partitions=PARTITIONS)
        publisher = Publisher(redis, keys, partitions=PARTITIONS)
        sections = {"tenants": channels, "conversations": ConversationsConfig()}
        resources = Resources(settings, redis, keys, CATALOG, publisher, pg_pool, sections)
        senders = OutboundSenders(
            channels,
            redis=redis,
            keys=keys,
            session=session,
            partitions=PARTITIONS,
            pace_clock=clock,
        )
        parts = ChannelParts(senders)
        delivery = build_reply_delivery(resources, parts)
        mailbox = Mailbox(redis, keys, partitions=PARTITIONS, holder="test")
        try:
            yield Paced(graph, clock, parts, delivery, mailbox, DispatcherStore(pg_pool), pg_pool)
        finally:
            await parts.aclose()


async def test_the_chunks_of_a_long_part_reach_the_provider_one_pace_apart(paced: Paced) -> None:
    long_text = ReplyText(text="\n\n".join(c * 4_000 for c in "abc"))
    await paced.parts.send_part(TENANT, CHANNEL, CONTACT, long_text, reply_id="r1")
    # The part's first slot is now, so it is sent whole: its third chunk waits in the worker.
    assert paced.graph.arrivals == [(CONTACT, 0.0), (CONTACT, 0.0), (CONTACT, 6.0)]
    await paced.parts.send_part(TENANT, CHANNEL, OTHER, ReplyText(text="oi"), reply_id="r2")
    assert paced.graph.arrivals[-1] == (OTHER, 6.0), "sent at once: its own recipient's pace"
    more = ReplyText(text="e mais")
    with pytest.raises(SendRefused) as refused:  # its slot, at 12 s, is over 5 s away
        await paced.parts.send_part(TENANT, CHANNEL, CONTACT, more, reply_id="r3")
    assert (refused.value.retryable, refused.value.retry_after_ms) == (True, 6_000)
    paced.clock.t += 6.0
    await paced.parts.send_part(TENANT, CHANNEL, CONTACT, more, reply_id="r3")
    assert paced.graph.arrivals[-1] == (CONTACT, 12.0)
    assert paced.clock.sleeps == [6.0]


async def test_a_part_whose_slot_is_too_far_is_delivered_again_when_it_comes(
    paced: Paced,
) -> None:
    turn = await open_turn(paced)
    event = reply(turn, *(ReplyText(text=f"parte {n}") for n in range(3)))
    with pytest.raises(RetryLater) as later:
        await paced.delivery.deliver(event)
    # Parts 0 and 1 went out as a burst; part 2's slot is 6 s away, over the 5 s a send waits.
    assert later.value.delay_ms == 6_000
    assert paced.graph.arrivals == [(CONTACT, 0.0), (CONTACT, 0.0)]
    assert paced.clock.sleeps == []
    claimed = await paced.pool.fetchval("SELECT count(*) FROM messages WHERE direction = 'out'")
    assert claimed == 2, "the refused part's claim was given back"
    paced.clock.t += 6.0  # the consumer redelivers the reply after delay_ms
    delivered = await paced.delivery.deliver(event)
    assert (delivered.outcome, delivered.parts_sent) == ("sent", 3)
    assert paced.graph.arrivals[-1] == (CONTACT, 6.0)
    assert len(paced.graph.arrivals) == 3, "the parts sent before were not sent again"
    assert await turn_status(paced, turn) == "completed"


async def test_without_a_clock_of_its_own_the_pacer_reads_redis_time_and_forgets_past_slots(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    paced = RedisRecipientPacer(
        redis,
        keys,
        tenant_id=TENANT,
        channel_id=CHANNEL,
        pace=RecipientPace(interval_ms=6_000),
        partitions=PARTITIONS,
    )
    assert (await paced.reserve(CONTACT, 2)).delays_s == (0.0, 6.0)
    ttl_ms = await redis.pttl(paced.key(CONTACT))
    assert 0 < ttl_ms <= 13_000, "the key lives until its last slot has passed, not forever"
