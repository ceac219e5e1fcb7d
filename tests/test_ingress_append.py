"""The ingress's atomic append: one event per dedup key, and gap-free seq per conversation."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from events.catalog import CATALOG
from events.envelope import Envelope
from events.examples import example_envelope
from events.partitions import partition_for
from events.streams import DELIVERY_STATUS_UPDATED, INBOX_MESSAGE_RECEIVED
from ingress.append import (
    SEQ_MARKER,
    Appended,
    AppendRequest,
    AppendResult,
    BacklogFull,
    InboundAppender,
)
from libs.keys import KeySpace
from libs.streams.codec import decode_entry
from tests.streams_support import entries

PARTITIONS = 4


def inbound(wamid: str, conversation: str = "wa-main:5511987654321") -> Envelope[Any]:
    """An inbox event for ``wamid`` whose seq is still the marker."""
    payload = example_envelope(INBOX_MESSAGE_RECEIVED, 1).payload.model_copy(
        update={"provider_message_id": wamid, "seq": SEQ_MARKER}
    )
    return Envelope.new(payload, tenant_id="acme", conversation_id=conversation)


def appender(redis: aioredis.Redis, keys: KeySpace, capacity: int = 10_000) -> InboundAppender:
    return InboundAppender(redis, keys, partitions=PARTITIONS, capacity=capacity, dedup_ttl_s=60)


def appended(result: AppendResult) -> Appended:
    """``result``, which must not be a refusal."""
    assert isinstance(result, Appended), result
    return result


async def stored(redis: aioredis.Redis, keys: KeySpace, envelope: Envelope[Any]) -> list[Any]:
    partition = partition_for(envelope.tenant_id, envelope.conversation_id, PARTITIONS)
    found = await entries(redis, keys.stream(envelope.stream, partition))
    return [decode_entry(CATALOG, fields) for _id, fields in found]


async def test_a_duplicate_appends_nothing_and_points_at_the_original(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    append = appender(redis, keys)
    first = appended(await append.append(inbound("wamid.A"), "wa-main", "wamid.A", numbered=True))
    again = appended(await append.append(inbound("wamid.A"), "wa-main", "wamid.A", numbered=True))
    assert not first.duplicate
    assert first.seq == 1
    assert again.duplicate
    assert again.entry_id == first.entry_id
    [event] = await stored(redis, keys, inbound("wamid.A"))
    assert event.payload.seq == 1
    assert event.payload.provider_message_id == "wamid.A"


async def test_concurrent_duplicates_yield_one_event(redis: aioredis.Redis, keys: KeySpace) -> None:
    append = appender(redis, keys)
    results = await asyncio.gather(
        *(append.append(inbound("wamid.B"), "wa-main", "wamid.B", numbered=True) for _ in range(20))
    )
    assert sum(not appended(result).duplicate for result in results) == 1
    assert len(await stored(redis, keys, inbound("wamid.B"))) == 1


async def test_distinct_messages_get_strictly_increasing_seq_in_their_payload(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    append = appender(redis, keys)
    items = [AppendRequest(inbound(f"wamid.{n}"), "wa-main", f"wamid.{n}", True) for n in range(30)]
    results = await append.append_many(items)
    results += await asyncio.gather(
        *(append.append(inbound(f"wamid.x{n}"), "wa-main", f"wamid.x{n}", numbered=True)
          for n in range(30))
    )  # fmt: skip
    assert sorted(appended(result).seq or 0 for result in results) == list(range(1, 61))
    events = await stored(redis, keys, inbound("any"))
    assert [event.payload.seq for event in events] == list(range(1, 61)), "stream order is seq"
    other = await append.append(
        inbound("wamid.C", conversation="wa-main:5511000000000"),
        "wa-main",
        "wamid.C",
        numbered=True,
    )
    assert appended(other).seq == 1, "each conversation counts on its own"


async def test_statuses_are_appended_without_a_seq(redis: aioredis.Redis, keys: KeySpace) -> None:
    append = appender(redis, keys)
    status = example_envelope(DELIVERY_STATUS_UPDATED, 1)
    fresh = Envelope.new(status.payload, tenant_id="acme", conversation_id="wa-main:55")
    first = appended(await append.append(fresh, "wa-main", "wamid.D:read", numbered=False))
    again = appended(await append.append(fresh, "wa-main", "wamid.D:read", numbered=False))
    assert (first.duplicate, first.seq, again.duplicate) == (False, None, True)
    [event] = await stored(redis, keys, fresh)
    assert event.payload.status == status.payload.status


async def test_each_append_may_carry_its_own_dedup_ttl(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    append = appender(redis, keys)
    [result] = await append.append_many([AppendRequest(inbound("wamid.T"), "sms", "k", True, 90)])
    partition = partition_for("acme", "wa-main:5511987654321", PARTITIONS)
    ttl = await redis.ttl(keys.dedup("sms", partition, "k"))
    assert not appended(result).duplicate
    assert 0 < ttl <= 90


async def test_a_batch_across_partitions_answers_in_order_and_dedups_within_itself(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    conversations = [f"wa-main:55119{n:08d}" for n in range(12)]
    batch = [
        AppendRequest(inbound(f"wamid.{n}", c), "wa-main", f"wamid.{n}", numbered=True)
        for n, c in enumerate(conversations)
    ]
    batch.append(AppendRequest(inbound("wamid.3", conversations[3]), "wa-main", "wamid.3", True))
    partitions = {partition_for("acme", c, PARTITIONS) for c in conversations}
    assert len(partitions) > 1, "the batch must span partitions"

    results = [appended(result) for result in await appender(redis, keys).append_many(batch)]

    assert [r.duplicate for r in results] == [False] * 12 + [True]
    assert results[-1].entry_id == results[3].entry_id
    for request, result in zip(batch[:12], results, strict=False):
        in_partition = await stored(redis, keys, request.envelope)
        [event] = [e for e in in_partition if e.conversation_id == request.envelope.conversation_id]
        assert event.payload.provider_message_id == request.dedup_key
        assert event.payload.seq == result.seq == 1


async def test_appends_survive_a_script_cache_flush(redis: aioredis.Redis, keys: KeySpace) -> None:
    append = appender(redis, keys)
    [first] = await append.append_many([AppendRequest(inbound("wamid.F1"), "wa-main", "F1", True)])
    await redis.script_flush()
    [second] = await append.append_many([AppendRequest(inbound("wamid.F2"), "wa-main", "F2", True)])
    assert (appended(first).seq, appended(second).seq) == (1, 2)
    assert len(await stored(redis, keys, inbound("wamid.F2"))) == 2


async def test_a_partition_at_capacity_refuses_without_claiming_numbering_or_trimming(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    append = appender(redis, keys, capacity=3)
    conversation = "wa-main:5511987654321"
    partition = partition_for("acme", conversation, PARTITIONS)
    stream = keys.stream(INBOX_MESSAGE_RECEIVED, partition)
    batch = [AppendRequest(inbound(f"wamid.{n}"), "wa-main", f"wamid.{n}", True) for n in range(4)]
    batch.append(AppendRequest(inbound("wamid.0"), "wa-main", "wamid.0", True))

    results = await append.append_many(batch)

    assert [appended(result).seq for result in results[:3]] == [1, 2, 3]
    assert results[3] == BacklogFull(INBOX_MESSAGE_RECEIVED, partition, 3, 3)
    assert appended(results[4]).duplicate, "a stored event stays a duplicate when full"
    assert await redis.xlen(stream) == 3, "nothing appended, nothing trimmed"
    assert await redis.exists(keys.dedup("wa-main", partition, "wamid.3")) == 0
    assert await redis.get(keys.sequence(partition, "acme", conversation)) == b"3"

    [(oldest, _fields)] = await entries(redis, stream, count=1)
    await redis.xdel(stream, oldest)  # as the trimmer does once every group is past it
    retried = appended((await append.append_many(batch[3:4]))[0])
    assert (retried.duplicate, retried.seq) == (False, 4)
