"""The tool-gateway consumer end to end: a request on the stream, an answer on the other."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from consumers import discover, select
from consumers.tool_gateway import ToolGatewayHandler, consumer, gateway_handler
from events.catalog import CATALOG
from events.envelope import Envelope
from events.ids import derived_event_id
from events.streams import TOOLS_CALL_COMPLETED
from events.types.tools import ToolCallCompleted
from libs.errors import ConfigurationError
from libs.keys import KeySpace
from libs.resources import Resources
from libs.streams import ConsumerRunner, Publisher, Received, RunnerConfig
from libs.streams.codec import decode_entry
from tests.gateway_tools._support import AGENTS, SETTINGS, TEST_TOOLS, request, runs
from tests.streams_support import entries, eventually, fast_settings
from tests.tool_support import seed_conversation
from tool_gateway import AgentProfilesConfig
from tool_gateway.gateway import GATEWAY_ROLE

NOTE = {"text": "prefers mornings", "email": "maria@example.com"}


def _resources(
    redis: aioredis.Redis, keys: KeySpace, pool: asyncpg.Pool, config: dict[str, object]
) -> Resources:
    settings = fast_settings(stream_partitions=2)
    publisher = Publisher(redis, keys, partitions=2)
    return Resources(settings, redis, keys, CATALOG, publisher, pool, config)


async def _completed(redis: aioredis.Redis, keys: KeySpace) -> list[Envelope[Any]]:
    found: list[Envelope[Any]] = []
    for partition in range(2):
        for _entry_id, fields in await entries(redis, keys.stream(TOOLS_CALL_COMPLETED, partition)):
            found.append(decode_entry(CATALOG, fields))
    return found


async def test_a_request_on_the_stream_is_answered_on_the_completed_stream(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    resources = _resources(redis, keys, pg_pool, {"agents": AGENTS, "tools": SETTINGS})
    handler = gateway_handler(resources, registry=TEST_TOOLS)
    assert isinstance(handler, ToolGatewayHandler)
    runner = ConsumerRunner(
        consumer,
        handler,
        redis=redis,
        keys=keys,
        registry=CATALOG,
        config=RunnerConfig.for_consumer(consumer, resources.settings),
    )
    allowed = request(seeded, "notes.add", NOTE, call_id="allowed")
    refused = request(seeded, "notes.add", NOTE, call_id="refused", profile="sales")
    await resources.publisher.publish_many([allowed, refused])
    await runner.start()

    async def answered() -> bool:
        return len(await _completed(redis, keys)) == 2

    try:
        await eventually(answered, what="both requests answered")
    finally:
        await runner.stop()
        await handler.aclose()

    by_call = {event.payload.tool_call_id: event for event in await _completed(redis, keys)}
    ok, denied = by_call["allowed"], by_call["refused"]
    assert isinstance(ok.payload, ToolCallCompleted)
    assert (ok.payload.outcome, ok.payload.result) == (
        "ok",
        {"notes": 1, "text": "prefers mornings"},
    )
    assert (ok.tenant_id, ok.conversation_id) == (seeded.tenant_id, seeded.conversation_id)
    assert (ok.causation_id, ok.correlation_id) == (allowed.id, allowed.correlation_id)
    assert (ok.payload.turn_id, ok.payload.fencing_token) == (seeded.turn_id, 1)
    assert denied.payload.error.code == "not_allowed"
    assert denied.causation_id == refused.id
    assert await runs(redis, keys, "notes.add") == 1
    assert await pg_pool.fetchval("SELECT count(*) FROM tool_calls") == 2


class WorkerCrash(Exception):
    """The worker dies after publishing the answer, before acknowledging the request."""


async def test_a_redelivered_request_is_answered_again_under_the_same_event_id(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    resources = _resources(redis, keys, pg_pool, {"agents": AGENTS, "tools": SETTINGS})
    handler = gateway_handler(resources, registry=TEST_TOOLS)
    assert isinstance(handler, ToolGatewayHandler)
    crashed: list[int] = []

    async def crash_before_the_first_ack(received: Received) -> None:
        await handler(received)
        if not crashed:
            crashed.append(received.attempt)
            raise WorkerCrash("died between publishing the answer and acknowledging the request")

    runner = ConsumerRunner(
        consumer,
        crash_before_the_first_ack,
        redis=redis,
        keys=keys,
        registry=CATALOG,
        config=RunnerConfig.for_consumer(consumer, resources.settings),
    )
    asked = request(seeded, "notes.add", NOTE)
    await resources.publisher.publish(asked)
    await runner.start()

    async def answered_twice() -> bool:
        return len(await _completed(redis, keys)) == 2

    try:
        await eventually(answered_twice, what="the answer and its republish")
    finally:
        await runner.stop()
        await handler.aclose()

    assert crashed == [1]
    first, republished = await _completed(redis, keys)
    assert [first.payload.replayed, republished.payload.replayed] == [False, True]
    assert first.payload.result == republished.payload.result
    assert first.id == republished.id, "consumers idempotent by event id must see one answer"
    assert first.id == derived_event_id(
        asked.id, role=GATEWAY_ROLE, event_type=TOOLS_CALL_COMPLETED
    )
    assert await runs(redis, keys, "notes.add") == 1


def test_the_consumer_is_discovered_and_needs_postgres() -> None:
    [found] = select(discover(), ["tool-gateway"])
    assert found is consumer
    assert found.streams == ("tools.call.requested",)
    assert "postgres" in found.tags


async def test_a_profile_naming_an_unregistered_tool_stops_the_start(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    typo = AgentProfilesConfig.model_validate(
        [{"tenant": "acme", "profile": "sales", "tools": ["notes.cuont"]}]
    )
    resources = _resources(redis, keys, pg_pool, {"agents": typo})
    with pytest.raises(ConfigurationError, match=r"no tool is registered as 'notes\.cuont'"):
        gateway_handler(resources, registry=TEST_TOOLS)
