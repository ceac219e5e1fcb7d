"""Streams are trimmed by every group's progress: nothing accepted is removed unhandled."""

from __future__ import annotations

import io
import json
from collections import Counter

import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from libs.keys import KeySpace
from libs.streams import Received
from libs.streams.partitions import stream_partitions
from libs.streams.trimming import StreamTrimmer
from tests.streams_support import (
    PROBE_STREAM,
    entries,
    eventually,
    fast_settings,
    group_pending,
    make_publisher,
    make_runner,
    probe,
)


async def test_trim_keeps_every_entry_a_group_has_not_acknowledged(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1)
    key = keys.stream(PROBE_STREAM, 0)
    await make_publisher(redis, keys, settings).publish_many([probe(n, "c") for n in range(400)])
    ids = [entry_id for entry_id, _ in await entries(redis, key)]
    for group in ("fast", "slow"):
        await redis.xgroup_create(key, group, id="0")
    # "fast" handled everything; a "slow" consumer crashed holding the first 50 unacknowledged
    # and never read the rest.
    await redis.xreadgroup("fast", "f", {key: ">"}, count=400)
    await redis.xack(key, "fast", *ids)
    await redis.xreadgroup("slow", "dead", {key: ">"}, count=50)
    trimmer = StreamTrimmer(redis)
    partitions = stream_partitions(keys, [PROBE_STREAM], 1)

    await trimmer.trim(partitions)
    assert [entry_id for entry_id, _ in await entries(redis, key)] == ids, "nothing removed"

    await redis.xack(key, "slow", *ids[:50])
    await trimmer.trim(partitions)
    kept = [entry_id for entry_id, _ in await entries(redis, key)]
    assert kept[-350:] == ids[50:], "what 'slow' has not read is all still there"

    await redis.xreadgroup("slow", "alive", {key: ">"}, count=400)
    await redis.xack(key, "slow", *ids[50:])
    await trimmer.trim(partitions)
    assert await redis.xlen(key) < 100, "acknowledged by every group: trimmed (whole nodes)"


async def test_a_stream_without_groups_is_never_trimmed(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1)
    await make_publisher(redis, keys, settings).publish_many([probe(n, "c") for n in range(300)])
    partitions = stream_partitions(keys, [PROBE_STREAM], 1)
    assert await StreamTrimmer(redis).trim(partitions) == 0
    assert await redis.xlen(keys.stream(PROBE_STREAM, 0)) == 300


async def test_a_crashed_consumers_entries_survive_traffic_and_are_all_handled(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1, claim_idle_ms=400, stream_stats_interval_s=0.05)
    key = keys.stream(PROBE_STREAM, 0)
    publisher = make_publisher(redis, keys, settings)
    await redis.xgroup_create(key, "probe", id="0", mkstream=True)
    await publisher.publish_many([probe(n, "c") for n in range(50)])
    await redis.xreadgroup("probe", "crashed", {key: ">"}, count=50)
    seen: Counter[int] = Counter()

    async def handle(received: Received) -> None:
        seen[received.envelope.payload.n] += 1

    runner = make_runner(redis, keys, handle, settings, consumer_name="survivor")
    await runner.start()
    for start in range(50, 400, 50):
        await publisher.publish_many([probe(n, "c") for n in range(start, start + 50)])

    async def all_handled() -> bool:
        return len(seen) == 400

    async def trimmed() -> bool:
        return await redis.xlen(key) < 100

    await eventually(all_handled, what="all 400 accepted events handled")
    await eventually(trimmed, what="the runner to trim what its group has handled")
    await runner.stop()
    assert set(seen.values()) == {1}
    assert await group_pending(redis, keys, "probe", 1) == 0


async def test_a_pending_entry_gone_from_its_stream_is_counted_and_logged_with_its_id(
    redis: aioredis.Redis, keys: KeySpace, log_lines: io.StringIO
) -> None:
    settings = fast_settings(stream_partitions=1, claim_idle_ms=200)
    key = keys.stream(PROBE_STREAM, 0)
    await redis.xgroup_create(key, "probe", id="0", mkstream=True)
    await make_publisher(redis, keys, settings).publish_many([probe(n, "c") for n in range(3)])
    await redis.xreadgroup("probe", "crashed", {key: ">"}, count=3)
    doomed = (await entries(redis, key))[1][0].decode()
    await redis.xdel(key, doomed)  # by hand: the runtime itself never trims a pending entry
    lost_before = _lost_count()
    seen: list[int] = []

    async def handle(received: Received) -> None:
        seen.append(received.envelope.payload.n)

    runner = make_runner(redis, keys, handle, settings, consumer_name="survivor")
    await runner.start()

    async def both_left_handled() -> bool:
        return len(seen) == 2

    await eventually(both_left_handled, what="the two remaining entries")
    await runner.stop()
    assert sorted(seen) == [0, 2]
    assert _lost_count() == lost_before + 1
    logged = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    gone = [line for line in logged if line["event"] == "pending entries gone from the stream"]
    assert gone, "the loss is logged"
    assert gone[0]["entry_ids"] == [doomed]
    assert await group_pending(redis, keys, "probe", 1) == 0


def _lost_count() -> float:
    value = REGISTRY.get_sample_value(
        "stream_entries_lost_total", {"stream": PROBE_STREAM, "group": "probe"}
    )
    return value or 0.0


async def test_the_floor_is_exact_for_sequence_numbers_beyond_double_precision(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    key = keys.stream(PROBE_STREAM, 0)
    first = 2**54 - 92  # one full radix node of 100 entries, then 10 more
    for n in range(110):
        await redis.xadd(key, {"n": n}, id=f"1-{first + n}")
    await redis.xgroup_create(key, "g", id="0")
    await redis.xreadgroup("g", "c", {key: ">"}, count=99)
    await redis.xack(key, "g", *[entry_id for entry_id, _ in await entries(redis, key, 99)])
    await StreamTrimmer(redis).trim(stream_partitions(keys, [PROBE_STREAM], 1))
    unread = await redis.xreadgroup("g", "c", {key: ">"}, count=1)
    assert unread[0][1][0][0] == f"1-{first + 99}".encode(), "the first unread entry is kept"  # type: ignore[index]
    top = keys.stream(PROBE_STREAM, 1)
    await redis.xadd(top, {"n": 1}, id=f"1-{2**64 - 1}")
    await redis.xgroup_create(top, "g", id="0")
    await redis.xreadgroup("g", "c", {top: ">"})
    await redis.xack(top, "g", f"1-{2**64 - 1}")
    assert await StreamTrimmer(redis).trim(stream_partitions(keys, [PROBE_STREAM], 2)) == 0
