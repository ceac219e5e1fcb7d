"""A conversation's mailbox and turn in Redis: one open turn, seq order, tokens that only grow."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from dispatcher.mailbox import Mailbox, MergePolicy, Transition, WaitingMessage
from dispatcher.turns import TurnLease
from libs.errors import StaleFencingToken
from libs.keys import KeySpace
from libs.leases import slot_name
from tests.streams_support import eventually

MERGE = MergePolicy(window_ms=80, max_wait_ms=400)


def message(seq: int) -> WaitingMessage:
    return WaitingMessage(seq, f"event-{seq}", f"wamid.{seq}")


def seqs(transition: Transition) -> list[int]:
    assert transition.turn is not None, transition
    return [m.seq for m in transition.turn.messages]


@pytest.fixture
def mailbox(redis: aioredis.Redis, keys: KeySpace) -> Mailbox:
    return Mailbox(redis, keys, partitions=4, holder="test", turn_ttl_ms=60_000)


async def test_enqueue_one_open_turn_and_the_next_opens_on_close(mailbox: Mailbox) -> None:
    chat = mailbox.conversation("t1", "wa:5511")
    first = await mailbox.admit(chat, message(1), "enqueue")
    assert first.outcome == "opened"
    assert seqs(first) == [1]
    assert first.turn is not None
    assert (await mailbox.admit(chat, message(2), "enqueue")).outcome == "queued"
    assert (await mailbox.admit(chat, message(3), "enqueue")).outcome == "queued"
    again = await mailbox.admit(chat, message(1), "enqueue")
    assert again.outcome == "duplicate"
    assert again.turn is not None
    assert again.turn.turn_id == first.turn.turn_id
    assert (await mailbox.admit(chat, message(2), "enqueue")).outcome == "duplicate"

    closed = await mailbox.close(chat, first.turn.token, "enqueue", MERGE)
    assert closed.outcome == "closed"
    assert seqs(closed) == [2, 3], "the next turn takes what waited, in seq order"
    assert closed.turn is not None
    assert closed.turn.token > first.turn.token
    assert (await mailbox.close(chat, first.turn.token, "enqueue", MERGE)).outcome == "stale"
    last = await mailbox.close(chat, closed.turn.token, "enqueue", MERGE)
    assert last == Transition("closed")
    assert (await mailbox.admit(chat, message(3), "enqueue")).outcome == "duplicate"
    assert seqs(await mailbox.admit(chat, message(4), "enqueue")) == [4]


async def test_concurrent_admits_open_exactly_one_turn_and_every_message_is_taken_once(
    mailbox: Mailbox,
) -> None:
    chat = mailbox.conversation("t1", "tg:42")
    results = await asyncio.gather(
        *(mailbox.admit(chat, message(n), "enqueue") for n in range(1, 21))
    )
    opened = [r for r in results if r.outcome == "opened"]
    assert len(opened) == 1
    taken = seqs(opened[0])
    turn = opened[0].turn
    while turn is not None:
        closed = await mailbox.close(chat, turn.token, "enqueue", MERGE)
        turn = closed.turn
        if turn is not None:
            taken += [m.seq for m in turn.messages]
    assert sorted(taken) == list(range(1, 21))
    assert len(set(taken)) == 20


async def test_merge_waits_for_quiet_then_answers_all_at_once(mailbox: Mailbox) -> None:
    chat = mailbox.conversation("t1", "wa:merge")
    waits = [await mailbox.admit(chat, message(n), "merge", MERGE) for n in (1, 2, 3)]
    assert [w.outcome for w in waits] == ["waiting"] * 3
    assert waits[0].due_ms is not None
    assert waits[2].due_ms is not None
    assert waits[2].due_ms >= waits[0].due_ms, "each message pushes the turn back"
    assert waits[2].due_ms <= waits[0].due_ms - MERGE.window_ms + MERGE.max_wait_ms

    async def due() -> bool:
        return chat in await mailbox.due_wakeups(chat.partition, 10)

    await eventually(due, what="the merge window to end")
    opened = await mailbox.open_waiting(chat)
    assert seqs(opened) == [1, 2, 3]
    assert await mailbox.due_wakeups(chat.partition, 10) == []
    assert (await mailbox.open_waiting(chat)).outcome == "busy"


async def test_interrupt_supersedes_the_open_turn_and_answers_the_latest_state(
    mailbox: Mailbox, redis: aioredis.Redis, keys: KeySpace
) -> None:
    chat = mailbox.conversation("t1", "wa:int")
    first = await mailbox.admit(chat, message(1), "interrupt")
    second = await mailbox.admit(chat, message(2), "interrupt")
    assert second.outcome == "superseded"
    assert first.turn is not None
    assert second.turn is not None
    assert second.superseded == (first.turn.turn_id, first.turn.token)
    assert seqs(second) == [1, 2]
    assert second.turn.token > first.turn.token
    lease = TurnLease(redis, keys)
    name = mailbox.turn_lease_name(chat)
    await lease.require_current(name, second.turn.token)
    with pytest.raises(StaleFencingToken):
        await lease.require_current(name, first.turn.token)
    assert (await mailbox.close(chat, first.turn.token, "interrupt", MERGE)).outcome == "stale"


async def test_reject_answers_without_a_turn_and_human_owned_messages_open_none(
    mailbox: Mailbox,
) -> None:
    chat = mailbox.conversation("t1", "wa:rej")
    opened = await mailbox.admit(chat, message(1), "reject")
    assert (await mailbox.admit(chat, message(2), "reject")).outcome == "rejected"
    assert (await mailbox.admit(chat, message(2), "reject")).outcome == "duplicate"
    assert opened.turn is not None
    assert (await mailbox.close(chat, opened.turn.token, "reject", MERGE)) == Transition("closed")
    assert (await mailbox.admit(chat, message(3), "human")).outcome == "human"
    assert (await mailbox.admit(chat, message(3), "enqueue")).outcome == "duplicate"


async def test_a_stalled_turn_is_resumed_under_a_new_token_then_handed_over(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    mailbox = Mailbox(redis, keys, partitions=4, holder="test", turn_ttl_ms=100)
    chat = mailbox.conversation("t1", "wa:stall")
    opened = await mailbox.admit(chat, message(1), "enqueue")
    assert opened.turn is not None
    assert (await mailbox.resume(chat, max_attempts=2)).outcome == "not_due"

    async def overdue() -> bool:
        return chat in await mailbox.due_turns(chat.partition, 10)

    await eventually(overdue, what="the turn's deadline")
    resumed = await mailbox.resume(chat, max_attempts=2)
    assert resumed.outcome == "opened"
    assert resumed.turn is not None
    assert (resumed.turn.turn_id, resumed.turn.attempt) == (opened.turn.turn_id, 2)
    assert resumed.turn.token > opened.turn.token
    assert not await mailbox.extend(chat, opened.turn.token), "the stalled holder lost it"
    await mailbox.admit(chat, message(2), "enqueue")
    await eventually(overdue, what="the deadline again")
    exhausted = await mailbox.resume(chat, max_attempts=2)
    assert exhausted.outcome == "exhausted"
    assert seqs(exhausted) == [1]
    assert exhausted.turn is not None
    await eventually(overdue, what="the hand-off to come due again")
    again = await mailbox.resume(chat, max_attempts=2)
    assert again.outcome == "exhausted", "a hand-off lost with its sweeper is retried"
    handed = await mailbox.close(chat, exhausted.turn.token, "human", MERGE)
    assert handed.outcome == "closed"
    assert [m.seq for m in handed.handed_over] == [2], "what waited goes to the human too"
    assert await mailbox.due_turns(chat.partition, 10) == []
    assert (await mailbox.admit(chat, message(2), "enqueue")).outcome == "duplicate"


async def test_messages_are_released_in_seq_order_whatever_order_they_arrive(
    mailbox: Mailbox,
) -> None:
    chat = mailbox.conversation("t1", "wa:order")
    assert (await mailbox.admit(chat, message(2), "enqueue")).outcome == "waiting"
    assert (await mailbox.admit(chat, message(3), "enqueue")).outcome == "waiting"
    assert seqs(await mailbox.admit(chat, message(1), "enqueue")) == [1, 2, 3]


async def test_a_gap_is_given_up_on_and_the_late_message_still_gets_its_turn(
    redis: aioredis.Redis, keys: KeySpace
) -> None:
    mailbox = Mailbox(redis, keys, partitions=4, holder="test", gap_wait_ms=100)
    chat = mailbox.conversation("t1", "wa:gap")
    assert (await mailbox.admit(chat, message(3), "enqueue")).outcome == "waiting"

    async def due() -> bool:
        return chat in await mailbox.due_wakeups(chat.partition, 10)

    await eventually(due, what="the gap wait to end")
    opened = await mailbox.open_waiting(chat)
    assert seqs(opened) == [3]
    assert (await mailbox.admit(chat, message(1), "enqueue")).outcome == "queued"
    assert opened.turn is not None
    late = await mailbox.close(chat, opened.turn.token, "enqueue", MERGE)
    assert seqs(late) == [1], "seq 1 came after its gap was given up on: answered, not lost"
    assert (await mailbox.admit(chat, message(1), "enqueue")).outcome == "duplicate"
    assert late.turn is not None
    await mailbox.close(chat, late.turn.token, "enqueue", MERGE)
    assert (await mailbox.admit(chat, message(2), "enqueue")).outcome == "opened"


async def test_more_tombstones_than_a_turn_holds_are_no_gap(mailbox: Mailbox) -> None:
    chat = mailbox.conversation("t1", "wa:human-stretch")
    for seq in range(1, 151):  # a human held the conversation for 150 messages
        assert (await mailbox.admit(chat, message(seq), "human")).outcome == "human"
    assert seqs(await mailbox.admit(chat, message(151), "enqueue")) == [151]


async def test_extending_a_turn_writes_back_a_lost_fence(
    mailbox: Mailbox, redis: aioredis.Redis, keys: KeySpace
) -> None:
    chat = mailbox.conversation("t1", "wa:fence")
    opened = await mailbox.admit(chat, message(1), "enqueue")
    assert opened.turn is not None
    lease = TurnLease(redis, keys)
    name = mailbox.turn_lease_name(chat)
    fence_key = keys.fence(slot_name(name))
    await redis.delete(fence_key)  # evicted, or lost in a failover
    with pytest.raises(StaleFencingToken):
        await lease.require_current(name, opened.turn.token)
    assert await mailbox.extend(chat, opened.turn.token)
    await lease.require_current(name, opened.turn.token)
