"""A partition at capacity: the webhook is refused (503, Retry-After), nothing is written over.

Real HTTP, real Redis: the partition is filled by accepted webhooks, then emptied the way the
trimmer empties it (entries removed), and the provider's retry goes through.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession
from prometheus_client import REGISTRY

from events.catalog import CATALOG
from events.partitions import partition_for
from events.streams import INBOX_MESSAGE_RECEIVED
from libs.keys import KeySpace
from libs.streams.codec import decode_entry
from tests.streams_support import entries
from tests.webhook_support import PARTITIONS, URL, config, serve, signed, webhook

CAPACITY = 2
RETRY_AFTER_S = 7
ANA = "5511987654321"
CONVERSATION = f"wa-main:{ANA}"


@pytest.fixture
async def base_url(redis_url: str, redis: aioredis.Redis, keys: KeySpace) -> AsyncIterator[str]:
    served = serve(
        redis_url,
        redis,
        keys,
        config(),
        capacity=CAPACITY,
        backlog_full_retry_after_s=RETRY_AFTER_S,
    )
    async for url in served:
        yield url


def refusals(partition: int) -> float:
    """How many events ``ingress_backlog_full_total`` counts for this inbox partition."""
    labels = {"stream": INBOX_MESSAGE_RECEIVED, "partition": str(partition)}
    return REGISTRY.get_sample_value("ingress_backlog_full_total", labels) or 0.0


async def post(url: str, body: bytes) -> tuple[int, str | None, str]:
    """POST a signed ``body``: the status, the Retry-After header and the raw answer."""
    async with (
        ClientSession() as http,
        http.post(url, data=body, headers=signed(body)) as response,
    ):
        return response.status, response.headers.get("Retry-After"), await response.text()


async def stream_state(redis: aioredis.Redis, keys: KeySpace, partition: int) -> list[Any]:
    """What a refusal must leave unchanged: the stream's entries, the seq, Ana's dedup keys."""
    stream = keys.stream(INBOX_MESSAGE_RECEIVED, partition)
    dedup = [key async for key in redis.scan_iter(match=keys.dedup("wa-main", partition, "*"))]
    return [
        await redis.xrange(stream),
        await redis.get(keys.sequence(partition, "acme", CONVERSATION)),
        sorted(dedup),
    ]


async def remove_oldest(redis: aioredis.Redis, stream: str) -> None:
    """Remove the stream's first entry, as the trimmer does once every group is past it."""
    [(oldest, _fields)] = await entries(redis, stream, count=1)
    await redis.xdel(stream, oldest)


def sender_in_other_partition() -> str:
    """A WhatsApp sender whose conversation is not in Ana's partition."""
    ana = partition_for("acme", CONVERSATION, PARTITIONS)
    for n in range(100):
        sender = f"55119{n:08d}"
        if partition_for("acme", f"wa-main:{sender}", PARTITIONS) != ana:
            return sender
    raise AssertionError("no sender outside Ana's partition among 100")


def two_senders_webhook(first_wamid: str, other_sender: str, other_wamid: str) -> bytes:
    """One webhook carrying a message from Ana and one from ``other_sender``."""
    document = json.loads(webhook(first_wamid))
    value = document["entry"][0]["changes"][0]["value"]
    value["contacts"].append({"profile": {"name": "Bia"}, "wa_id": other_sender})
    value["messages"].append(
        {**value["messages"][0], "from": other_sender, "id": other_wamid, "text": {"body": "Hi"}}
    )
    return json.dumps(document).encode()


async def test_a_full_partition_refuses_with_503_and_retry_after_and_changes_nothing(
    base_url: str, redis: aioredis.Redis, keys: KeySpace, log_lines: io.StringIO
) -> None:
    partition = partition_for("acme", CONVERSATION, PARTITIONS)
    for n in range(CAPACITY):
        assert (await post(base_url + URL, webhook(f"wamid.fill.{n}")))[0] == 200
    before = await stream_state(redis, keys, partition)
    counted = refusals(partition)

    status, retry_after, answer = await post(base_url + URL, webhook("wamid.over"))

    assert (status, retry_after) == (503, str(RETRY_AFTER_S))
    problem = json.loads(answer)
    assert problem["error"] == "backlog_full"
    assert problem["retry_after_s"] == RETRY_AFTER_S
    assert "retry in 7 s" in problem["detail"]
    for internal in (keys.namespace, INBOX_MESSAGE_RECEIVED, "partition", "capacity"):
        assert internal not in answer, f"the answer names {internal!r}"
    assert await stream_state(redis, keys, partition) == before, "no entry, seq or claim"
    assert refusals(partition) == counted + 1
    [line] = [
        json.loads(line)
        for line in log_lines.getvalue().splitlines()
        if json.loads(line)["event"] == "backlog full, events refused"
    ]
    assert (line["stream"], line["partition"]) == (INBOX_MESSAGE_RECEIVED, partition)
    assert (line["length"], line["capacity"], line["refused"]) == (CAPACITY, CAPACITY, 1)

    stream = keys.stream(INBOX_MESSAGE_RECEIVED, partition)
    await remove_oldest(redis, stream)
    assert (await post(base_url + URL, webhook("wamid.over")))[0] == 200
    events = [decode_entry(CATALOG, fields) for _, fields in await entries(redis, stream)]
    assert [(e.payload.provider_message_id, e.payload.seq) for e in events] == [
        ("wamid.fill.1", 2),
        ("wamid.over", 3),
    ]


async def test_a_webhook_refused_in_one_partition_is_completed_by_its_retry_without_duplicates(
    base_url: str, redis: aioredis.Redis, keys: KeySpace
) -> None:
    full = partition_for("acme", CONVERSATION, PARTITIONS)
    other_sender = sender_in_other_partition()
    other = partition_for("acme", f"wa-main:{other_sender}", PARTITIONS)
    for n in range(CAPACITY):
        assert (await post(base_url + URL, webhook(f"wamid.fill.{n}")))[0] == 200
    body = two_senders_webhook("wamid.ana", other_sender, "wamid.bia")

    status, retry_after, _ = await post(base_url + URL, body)
    assert (status, retry_after) == (503, str(RETRY_AFTER_S))
    # The other partition had room: its event is stored, and its claim absorbs the retry.
    assert await redis.xlen(keys.stream(INBOX_MESSAGE_RECEIVED, other)) == 1

    await remove_oldest(redis, keys.stream(INBOX_MESSAGE_RECEIVED, full))
    status, _, answer = await post(base_url + URL, body)

    assert (status, json.loads(answer)) == (
        200,
        {"status": "accepted", "events": 1, "duplicates": 1},
    )
    stored = [
        decode_entry(CATALOG, fields)
        for partition in sorted({full, other})
        for _, fields in await entries(redis, keys.stream(INBOX_MESSAGE_RECEIVED, partition))
    ]
    ids = sorted(event.payload.provider_message_id for event in stored)
    assert ids == ["wamid.ana", "wamid.bia", "wamid.fill.1"]
