"""Overdue tool steps: each call still unanswered gets one ``timeout`` result, once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from ai_agent.llm import ChatReply, ToolCall, Usage, UserMessage
from ai_agent.replies import tool_request_events
from ai_agent.step_timeouts import ToolStepTimeouts
from ai_agent.transcript import TranscriptStore, TurnRun
from events.envelope import Envelope
from events.types.routing import RoutingHandoffRequested, TurnMessage
from events.types.tools import ToolCallCompleted
from libs.keys import KeySpace

TENANT, CONVERSATION = "acme", "wa:5511"
PARTITIONS = 2


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(redis: aioredis.Redis, keys: KeySpace) -> TranscriptStore:
    return TranscriptStore(redis, keys, partitions=PARTITIONS)


def _turn_event() -> Envelope[RoutingHandoffRequested]:
    return Envelope.new(
        RoutingHandoffRequested(
            turn_id="t1",
            fencing_token=1,
            agent_profile="support",
            channel_id="acme-wa",
            messages=(TurnMessage(seq=1, event_id="in-1", provider_message_id="wamid.1"),),
        ),
        tenant_id=TENANT,
        conversation_id=CONVERSATION,
    )


async def _waiting_step(store: TranscriptStore) -> tuple[TurnRun, list[Any]]:
    run = TurnRun(turn_id="t1", token=1, profile="support", channel_id="acme-wa")
    start = await store.begin(TENANT, CONVERSATION, run, {1: UserMessage(content="oi")})
    assert start is not None
    calls = tuple(
        ToolCall(id=call_id, name="orders__status", arguments_json="{}")
        for call_id in ("call-a", "call-b")
    )
    reply = ChatReply(tool_calls=calls, finish_reason="tool_calls", model="m", usage=Usage())
    waiting = start.run.with_reply(reply)
    assert await store.await_tools(TENANT, CONVERSATION, waiting)
    requests = tool_request_events(_turn_event(), waiting, {"orders__status": "orders.status"})
    return waiting, requests


def _sweeper(
    redis: aioredis.Redis, keys: KeySpace, store: TranscriptStore, clock: Clock
) -> tuple[ToolStepTimeouts, list[Envelope[Any]]]:
    published: list[Envelope[Any]] = []

    async def publish(events: list[Envelope[Any]]) -> None:
        published.extend(events)

    timeouts = ToolStepTimeouts(redis, keys, store, publish, partitions=PARTITIONS, clock=clock)
    return timeouts, published


async def test_only_calls_without_a_result_time_out_and_only_when_due(
    redis: aioredis.Redis, keys: KeySpace, store: TranscriptStore
) -> None:
    clock = Clock()
    timeouts, published = _sweeper(redis, keys, store, clock)
    run, requests = await _waiting_step(store)
    await timeouts.schedule(requests, run.step, timeout_s=30)
    await store.record_result(TENANT, CONVERSATION, 1, "call-a", json.dumps({"ok": True}))

    clock.now += 29
    assert await timeouts.sweep() == 0, "not due yet"
    clock.now += 2
    assert await timeouts.sweep() == 1
    (result,) = published
    assert isinstance(result.payload, ToolCallCompleted)
    assert (result.payload.tool_call_id, result.payload.outcome) == ("call-b", "error")
    assert result.payload.error is not None
    assert result.payload.error.code == "timeout"
    assert result.causation_id == requests[1].id
    assert await timeouts.sweep() == 0, "a step times out once"


async def test_two_sweepers_answer_a_due_step_once(
    redis: aioredis.Redis, keys: KeySpace, store: TranscriptStore
) -> None:
    clock = Clock()
    first, first_published = _sweeper(redis, keys, store, clock)
    second, second_published = _sweeper(redis, keys, store, clock)
    run, requests = await _waiting_step(store)
    await first.schedule(requests, run.step, timeout_s=1)
    clock.now += 2
    await asyncio.gather(first.sweep(), second.sweep())
    calls = sorted(e.payload.tool_call_id for e in first_published + second_published)
    assert calls == ["call-a", "call-b"]


async def test_a_step_whose_results_all_came_in_publishes_nothing(
    redis: aioredis.Redis, keys: KeySpace, store: TranscriptStore
) -> None:
    clock = Clock()
    timeouts, published = _sweeper(redis, keys, store, clock)
    run, requests = await _waiting_step(store)
    await timeouts.schedule(requests, run.step, timeout_s=1)
    for call_id in ("call-a", "call-b"):
        await store.record_result(TENANT, CONVERSATION, 1, call_id, "{}")
    clock.now += 2
    assert await timeouts.sweep() == 0
    assert published == []
    due = [await redis.zcard(keys.tool_steps_due(p)) for p in range(PARTITIONS)]
    assert due == [0, 0], "the step was taken off the due set"
