"""A call runs once per (turn, tool call): repeats, restarts, concurrent duplicates, takeovers."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as aioredis

from events.types.tools import ToolCallCompleted
from libs.errors import RetryLater
from libs.keys import KeySpace
from tests.gateway_tools._support import (
    AGENTS,
    audit_rows,
    counted,
    make_gateway,
    request,
    runs,
)
from tests.streams_support import eventually
from tests.tool_support import seed_conversation
from tool_gateway import AgentProfilesConfig
from tool_gateway.audit import CallRecord
from tool_gateway.idempotency import Answered, CallLedger, Claimed, StoredAnswer

NOTE = {"text": "prefers mornings", "email": "maria@example.com"}


async def test_a_repeat_after_a_restart_gets_the_stored_result_without_running_again(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    first = await make_gateway(redis, keys, pg_pool).handle(request(seeded, "notes.add", NOTE))
    before = counted("notes.add", "replayed")

    restarted = make_gateway(redis, keys, pg_pool)  # a new process would build a new one
    repeat = await restarted.handle(request(seeded, "notes.add", NOTE))

    assert (repeat.outcome, repeat.result) == (first.outcome, first.result)
    assert (first.replayed, repeat.replayed) == (False, True)
    assert await runs(redis, keys, "notes.add") == 1
    assert counted("notes.add", "replayed") == before + 1
    [row] = await audit_rows(pg_pool, "acme")
    assert (row["outcome"], row["attempts"]) == ("succeeded", 1)


async def test_concurrent_duplicates_run_the_tool_once(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateways = [make_gateway(redis, keys, pg_pool) for _ in range(2)]  # two replicas
    running = asyncio.create_task(gateways[0].handle(request(seeded, "gate.wait")))

    async def entered() -> bool:
        return await runs(redis, keys, "gate.wait") == 1

    try:
        await eventually(entered, what="the first request running the tool")
        duplicates = await asyncio.gather(
            *(gateways[i % 2].handle(request(seeded, "gate.wait")) for i in range(6)),
            return_exceptions=True,
        )
        assert all(isinstance(result, RetryLater) for result in duplicates), duplicates
        delays = {result.delay_ms for result in duplicates if isinstance(result, RetryLater)}
        assert all(delay is not None and 100 <= delay <= 6_000 for delay in delays)
    finally:
        await redis.rpush(f"{keys.namespace}:gateway-test:gate", "open")
        first = await asyncio.wait_for(running, timeout=10)

    assert (first.outcome, first.result) == ("ok", {"opened": True})
    again = await gateways[1].handle(request(seeded, "gate.wait"))
    assert (again.result, again.replayed) == ({"opened": True}, True)
    assert await runs(redis, keys, "gate.wait") == 1
    assert len(await audit_rows(pg_pool, "acme")) == 1


async def test_a_claim_after_the_completion_gets_the_stored_answer_and_runs_nothing(
    pg_pool: asyncpg.Pool,
) -> None:
    seeded = await seed_conversation(pg_pool)
    ledger = CallLedger(pg_pool, takeover_after_s=300)
    record = CallRecord(
        tenant_id="acme",
        conversation_id=seeded.conversation_id,
        turn_id=seeded.turn_id,
        fencing_token=1,
        agent_profile="support",
        tool="notes.add",
        arguments={},
        idempotency_key=f"{seeded.turn_id}:call-1",
        dry_run=False,
    )
    answer = StoredAnswer(outcome="ok", result={"notes": 1, "text": "prefers mornings"})
    first = await ledger.claim(record)
    assert isinstance(first, Claimed)
    completed = await ledger.complete(
        "acme", first, outcome="succeeded", error_code=None, answer=answer, latency_ms=12
    )
    assert completed is True

    # A duplicate that missed the stored answer before the first worker completed (a race)
    # claims only now: it must get the answer, not a claim to run the tool a second time.
    again = await ledger.claim(record)

    assert again == Answered(answer)
    assert await ledger.answered("acme", record.idempotency_key) == answer
    [row] = await audit_rows(pg_pool, "acme")
    assert (row["outcome"], row["attempts"], row["latency_ms"]) == ("succeeded", 1, 12)
    assert row["completed_at"] is not None


async def test_an_abandoned_claim_is_taken_over_and_the_late_worker_cannot_overwrite_it(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    ledger = CallLedger(pg_pool, takeover_after_s=300)
    record = CallRecord(
        tenant_id="acme",
        conversation_id=seeded.conversation_id,
        turn_id=seeded.turn_id,
        fencing_token=1,
        agent_profile="support",
        tool="notes.add",
        arguments={},
        idempotency_key=f"{seeded.turn_id}:call-1",
        dry_run=False,
    )
    dead = await ledger.claim(record)  # a worker that claimed the call, then died
    assert isinstance(dead, Claimed)
    gateway = make_gateway(redis, keys, pg_pool)

    with pytest.raises(RetryLater) as waiting:
        await gateway.handle(request(seeded, "notes.add", NOTE))
    assert waiting.value.delay_ms is not None
    assert 100 <= waiting.value.delay_ms <= 6_000  # the tool's timeout (5 s) and a second
    assert await runs(redis, keys, "notes.add") == 0

    await pg_pool.execute("UPDATE tool_calls SET claimed_at = now() - interval '301 seconds'")
    answer = await gateway.handle(request(seeded, "notes.add", NOTE))

    assert (answer.outcome, answer.replayed) == ("ok", False)
    assert await runs(redis, keys, "notes.add") == 1
    [row] = await audit_rows(pg_pool, "acme")
    assert (row["outcome"], row["attempts"]) == ("succeeded", 2)
    late = await ledger.complete(
        "acme", dead, outcome="failed", error_code="failed", answer=None, latency_ms=1
    )
    assert late is False
    [row] = await audit_rows(pg_pool, "acme")
    assert row["outcome"] == "succeeded"


async def test_a_refused_call_is_evaluated_again_when_repeated(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    strict = AgentProfilesConfig.model_validate(
        [{"tenant": "acme", "profile": "support", "tools": ["notes.count"]}]
    )
    refused = await make_gateway(redis, keys, pg_pool, agents=strict).handle(
        request(seeded, "notes.add", NOTE)
    )
    assert refused.error is not None

    # The operator grants the tool and the agent asks again with the same call id.
    answer: ToolCallCompleted = await make_gateway(redis, keys, pg_pool, agents=AGENTS).handle(
        request(seeded, "notes.add", NOTE)
    )

    assert (answer.outcome, answer.replayed) == ("ok", False)
    [row] = await audit_rows(pg_pool, "acme")
    assert (row["outcome"], row["error_code"], row["attempts"]) == ("succeeded", None, 1)
