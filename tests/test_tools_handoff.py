"""``handoff.to_human`` publishes ``conversation.handoff.human`` for the calling turn."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from events.catalog import CATALOG
from events.envelope import Envelope
from events.ids import derived_event_id
from events.partitions import partition_for
from events.streams import CONVERSATION_HANDOFF_HUMAN
from events.types import HumanHandoffRequested
from libs.keys import KeySpace
from libs.settings import Settings
from libs.streams.codec import decode_entry
from tests.gateway_tools._support import SETTINGS, request
from tests.streams_support import entries
from tests.tool_support import seed_conversation, tool_context, tool_services
from tool_gateway import AgentProfilesConfig, ToolGateway, ToolRegistry
from tool_gateway.tool import ToolContext, ToolFailed
from tool_gateway.tools.handoff import HANDOFF_ROLE, HANDOFF_TO_HUMAN, HandoffInput

REQUEST = HandoffInput(reason="asked_for_human", note="Maria wants to change her order #123.")


def handoff_stream(keys: KeySpace, context: ToolContext) -> str:
    assert context.conversation_id is not None
    partitions = Settings().stream_partitions
    partition = partition_for(context.tenant_id, context.conversation_id, partitions)
    return keys.stream(CONVERSATION_HANDOFF_HUMAN, partition)


async def test_the_event_lands_on_the_stream_with_the_turn(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool, fencing_token=4)
    context = tool_context(seeded, tool_services(redis, keys, pg_pool))
    result = await HANDOFF_TO_HUMAN.run(context, REQUEST)

    [(_entry_id, fields)] = await entries(redis, handoff_stream(keys, context))
    envelope = decode_entry(CATALOG, fields)
    assert (result.status, result.event_id) == ("requested", envelope.id)
    assert (envelope.tenant_id, envelope.conversation_id) == ("acme", "acme-conversation-1")
    assert envelope.payload == HumanHandoffRequested(
        reason="asked_for_human",
        note="Maria wants to change her order #123.",
        requested_by="agent",
        channel_id="acme-wa",
        turn_id="acme-turn-1",
        fencing_token=4,
    )


async def test_the_event_is_caused_by_the_request_and_keeps_its_id_when_the_call_reruns(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    agents = AgentProfilesConfig.model_validate(
        [{"tenant": "acme", "profile": "support", "tools": ["handoff.to_human"]}]
    )
    services = tool_services(redis, keys, pg_pool)
    gateway = ToolGateway(ToolRegistry([HANDOFF_TO_HUMAN]), agents, SETTINGS, services)
    asked = request(seeded, "handoff.to_human", REQUEST.model_dump())
    context = tool_context(seeded, services)

    first = await gateway.handle(asked)
    # The worker published the handoff, then died before storing the call's answer: its claim
    # is left pending, and once past the takeover time the redelivered request runs it again.
    await pg_pool.execute(
        "UPDATE tool_calls SET outcome = 'pending', result = NULL, completed_at = NULL,"
        " claimed_at = now() - interval '1 hour'"
    )
    rerun = await gateway.handle(asked)

    published = [
        decode_entry(CATALOG, fields)
        for _entry_id, fields in await entries(redis, handoff_stream(keys, context))
    ]
    assert len(published) == 2, "the rerun published again"
    handoff: Envelope[HumanHandoffRequested] = published[0]
    assert (handoff.causation_id, handoff.correlation_id) == (asked.id, asked.correlation_id)
    assert (handoff.tenant_id, handoff.conversation_id) == (asked.tenant_id, asked.conversation_id)
    expected_id = derived_event_id(
        asked.id, role=HANDOFF_ROLE, event_type=CONVERSATION_HANDOFF_HUMAN
    )
    assert [event.id for event in published] == [expected_id, expected_id]
    assert [(first.replayed, first.result), (rerun.replayed, rerun.result)] == [
        (False, {"status": "requested", "event_id": expected_id}),
        (False, {"status": "requested", "event_id": expected_id}),
    ]


async def test_the_channel_is_looked_up_for_the_calling_tenant_only(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    await seed_conversation(pg_pool, "globex")
    acme = await seed_conversation(pg_pool, "acme")
    # acme's turn names globex's conversation: the tenant filter must find no channel.
    context = replace(
        tool_context(acme, tool_services(redis, keys, pg_pool)),
        conversation_id="globex-conversation-1",
    )
    await HANDOFF_TO_HUMAN.run(context, REQUEST)

    [(_entry_id, fields)] = await entries(redis, handoff_stream(keys, context))
    envelope = decode_entry(CATALOG, fields)
    assert envelope.tenant_id == "acme"
    assert envelope.payload.channel_id is None


async def test_a_dry_run_publishes_nothing(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    context = tool_context(seeded, tool_services(redis, keys, pg_pool), dry_run=True)
    assert HANDOFF_TO_HUMAN.simulate is not None
    result = await HANDOFF_TO_HUMAN.simulate(context, REQUEST)

    assert (result.status, result.event_id) == ("simulated", None)
    assert await entries(redis, handoff_stream(keys, context)) == []
    assert HANDOFF_TO_HUMAN.writes is True


async def test_a_call_outside_a_conversation_fails(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    context = replace(
        tool_context(seeded, tool_services(redis, keys, pg_pool)), conversation_id=None
    )
    with pytest.raises(ToolFailed, match="only take over a conversation"):
        await HANDOFF_TO_HUMAN.run(context, REQUEST)
    keys_written = [key async for key in redis.scan_iter(match=f"{keys.namespace}:*")]
    assert keys_written == []


@pytest.mark.parametrize(
    "arguments", [{"reason": "Asked For Human", "note": "x"}, {"reason": "unsure", "note": ""}]
)
def test_bad_arguments_are_refused_by_the_schema(arguments: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        HandoffInput.model_validate(arguments)
