"""The stream runtime against a real Redis: delivery, retries, dead letters, healing."""

from __future__ import annotations

import asyncio
from collections import Counter

import redis.asyncio as aioredis

from events.partitions import partition_for
from libs.errors import Drop, Reject, RetryLater
from libs.keys import KeySpace
from libs.streams import ExponentialBackoff, Received, RetryPolicy
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


async def test_every_event_is_handled_once_and_acknowledged(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings()
    seen: Counter[int] = Counter()

    async def handle(received: Received) -> None:
        seen[received.envelope.payload.n] += 1

    runner = make_runner(redis, keys, handle, settings)
    await runner.start()
    await make_publisher(redis, keys, settings).publish_many([probe(n) for n in range(300)])

    async def all_seen() -> bool:
        return len(seen) == 300

    await eventually(all_seen, what="300 events handled")
    await runner.stop()
    assert set(seen.values()) == {1}
    assert await group_pending(redis, keys, "probe", 4) == 0
    for partition in range(4):
        members = await redis.xinfo_consumers(keys.stream(PROBE_STREAM, partition), "probe")
        assert members == [], "a consumer that stopped with nothing pending leaves its group"
    used = {
        p
        for p in range(4)
        if (await redis.xinfo_stream(keys.stream(PROBE_STREAM, p)))["entries-added"]
    }
    assert used == {0, 1, 2, 3}, "conversations spread over every partition"


async def test_failing_handler_dead_letters_after_max_deliveries_and_group_moves_on(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(max_deliveries=3)
    attempts: Counter[int] = Counter()

    async def handle(received: Received) -> None:
        n = received.envelope.payload.n
        attempts[n] += 1
        if n == 0:
            raise ValueError(f"probe {n} is broken (attempt {received.attempt})")

    runner = make_runner(redis, keys, handle, settings)
    await runner.start()
    publisher = make_publisher(redis, keys, settings)
    broken = probe(0, conversation="same")
    entry_id = await publisher.publish(broken)
    partition = partition_for("t1", "same", 4)
    dlq = keys.dead_letters(PROBE_STREAM, partition)

    async def dead_lettered() -> bool:
        return await redis.xlen(dlq) == 1

    await eventually(dead_lettered, what="the broken entry in the dead-letter stream")
    await publisher.publish(probe(1, conversation="same"))

    async def next_handled() -> bool:
        return attempts[1] == 1

    await eventually(next_handled, what="the next event of the stream")
    await runner.stop()

    assert attempts[0] == 3
    [(_dlq_id, fields)] = await entries(redis, dlq)
    assert fields[b"origin_stream"] == PROBE_STREAM.encode()
    assert fields[b"origin_id"] == entry_id.encode()
    assert fields[b"origin_partition"] == str(partition).encode()
    assert fields[b"group"] == b"probe"
    assert fields[b"attempts"] == b"3"
    assert fields[b"error_type"] == b"ValueError"
    assert b"probe 0 is broken (attempt 3)" in fields[b"error"]
    assert fields[b"type"] == b"test.probe", "the original entry travels with its dead letter"
    assert await group_pending(redis, keys, "probe", 4) == 0


async def test_retry_later_and_transient_failures_are_redelivered_with_growing_attempts(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(max_deliveries=5)
    attempts: list[int] = []

    async def handle(received: Received) -> None:
        attempts.append(received.attempt)
        if received.attempt == 1:
            raise RetryLater("the calendar is busy", delay_ms=20)
        if received.attempt == 2:
            raise ConnectionError("flaky upstream")

    runner = make_runner(redis, keys, handle, settings)
    await runner.start()
    await make_publisher(redis, keys, settings).publish(probe(7))

    async def succeeded() -> bool:
        return attempts == [1, 2, 3]

    await eventually(succeeded, what="three deliveries")
    await runner.stop()
    assert await group_pending(redis, keys, "probe", 4) == 0


async def test_drop_acknowledges_and_reject_dead_letters_at_once(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1, max_deliveries=5)
    calls: Counter[int] = Counter()

    async def handle(received: Received) -> None:
        n = received.envelope.payload.n
        calls[n] += 1
        if n == 1:
            raise Drop("superseded")
        if n == 2:
            raise Reject("cannot ever work")

    runner = make_runner(redis, keys, handle, settings)
    await runner.start()
    await make_publisher(redis, keys, settings).publish_many([probe(1), probe(2), probe(3)])

    async def done() -> bool:
        return calls[3] == 1 and await redis.xlen(keys.dead_letters(PROBE_STREAM, 0)) == 1

    await eventually(done, what="drop, reject and a normal event")
    await runner.stop()
    assert calls == Counter({1: 1, 2: 1, 3: 1})
    assert await group_pending(redis, keys, "probe", 1) == 0


async def test_undecodable_entry_is_dead_lettered_without_retries(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1)
    handled: list[int] = []

    async def handle(received: Received) -> None:
        handled.append(received.envelope.payload.n)

    runner = make_runner(redis, keys, handle, settings)
    await runner.start()
    key = keys.stream(PROBE_STREAM, 0)
    await redis.xadd(key, {"type": "test.probe", "version": "1", "envelope": b"{not json"})
    await redis.xadd(key, {"something": "else"})
    await make_publisher(redis, keys, settings).publish(probe(5))

    async def settled() -> bool:
        return handled == [5] and await redis.xlen(keys.dead_letters(PROBE_STREAM, 0)) == 2

    await eventually(settled, what="two dead letters and one handled event")
    await runner.stop()
    letters = await entries(redis, keys.dead_letters(PROBE_STREAM, 0))
    assert {fields[b"attempts"] for _id, fields in letters} == {b"1"}
    assert {fields[b"error_type"] for _id, fields in letters} == {b"EventDecodeError"}
    assert b"no 'type' field" in letters[1][1][b"error"]


async def test_entries_of_a_dead_consumer_are_reclaimed_with_their_delivery_count(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1, claim_idle_ms=300, max_deliveries=3)
    key = keys.stream(PROBE_STREAM, 0)
    await redis.xgroup_create(key, "probe", id="0", mkstream=True)
    await make_publisher(redis, keys, settings).publish_many([probe(n) for n in range(3)])
    # A consumer that read the entries and died without acknowledging them.
    await redis.xreadgroup("probe", "dead-consumer", {key: ">"}, count=10)
    poisoned = (await entries(redis, key, count=1))[0][0]
    for _ in range(3):  # this one killed three consumers already
        await redis.xclaim(key, "probe", "dead-consumer", 0, [poisoned])

    attempts: dict[int, int] = {}

    async def handle(received: Received) -> None:
        attempts[received.envelope.payload.n] = received.attempt

    runner = make_runner(redis, keys, handle, settings)
    await runner.start()

    async def reclaimed() -> bool:
        return len(attempts) == 2 and await redis.xlen(keys.dead_letters(PROBE_STREAM, 0)) == 1

    await eventually(reclaimed, what="reclaim of the dead consumer's entries")
    await runner.stop()
    assert attempts == {1: 2, 2: 2}
    [(_id, letter)] = await entries(redis, keys.dead_letters(PROBE_STREAM, 0))
    assert letter[b"error_type"] == b"DeliveriesExhausted"
    assert await group_pending(redis, keys, "probe", 1) == 0


async def test_stream_and_group_deleted_under_a_running_consumer_are_recreated(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=2)
    seen: set[int] = set()

    async def handle(received: Received) -> None:
        seen.add(received.envelope.payload.n)

    runner = make_runner(redis, keys, handle, settings)
    await runner.start()
    publisher = make_publisher(redis, keys, settings)
    await publisher.publish_many([probe(n) for n in range(10)])

    async def first_batch() -> bool:
        return len(seen) == 10

    await eventually(first_batch, what="the first batch")
    await redis.delete(*(keys.stream(PROBE_STREAM, p) for p in range(2)))
    await asyncio.sleep(0.3)
    await publisher.publish_many([probe(n) for n in range(10, 20)])
    key0 = keys.stream(PROBE_STREAM, 0)
    await redis.xgroup_destroy(key0, "probe")
    await publisher.publish_many([probe(n) for n in range(20, 30)])

    async def all_seen() -> bool:
        return seen == set(range(30))

    await eventually(all_seen, what="events published after the deletions")
    await runner.stop()


async def test_a_consumer_retry_policy_and_its_exhausted_hook(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    settings = fast_settings(stream_partitions=1, max_deliveries=5)
    given_up: list[tuple[int, int, str]] = []

    async def hand_to_human(received: Received, error: BaseException) -> None:
        given_up.append((received.envelope.payload.n, received.attempt, str(error)))

    async def handle(received: Received) -> None:
        raise TimeoutError("the LLM did not answer")

    policy = RetryPolicy(
        max_deliveries=2, backoff=ExponentialBackoff(5, 20), on_exhausted=hand_to_human
    )
    runner = make_runner(redis, keys, handle, settings, retry=policy)
    await runner.start()
    await make_publisher(redis, keys, settings).publish(probe(9))

    async def handed_off() -> bool:
        return len(given_up) == 1

    await eventually(handed_off, what="the exhausted hook")
    await runner.stop()
    assert given_up == [(9, 2, "the LLM did not answer")]
    assert await redis.xlen(keys.dead_letters(PROBE_STREAM, 0)) == 1
