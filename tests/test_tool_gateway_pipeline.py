"""One call through the gateway: refusals, validation, audit, dry run, timeout, breaker, fencing."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import pytest
import redis.asyncio as aioredis

from dispatcher.turns import TurnLease
from events.partitions import partition_for
from libs.keys import KeySpace
from libs.settings import Settings
from tests.gateway_tools import notes
from tests.gateway_tools._support import (
    AGENTS,
    SETTINGS,
    audit_rows,
    counted,
    make_gateway,
    request,
    runs,
)
from tests.tool_support import seed_conversation, tool_services
from tool_gateway import AgentProfilesConfig, ToolGateway, ToolRegistry
from tool_gateway.audit import REDACTED

NOTE = {"text": "prefers mornings", "email": "maria@example.com"}


async def test_a_tool_outside_the_profile_is_refused_audited_counted_and_not_run(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)
    before = counted("notes.add", "denied")

    answer = await gateway.handle(request(seeded, "notes.add", NOTE, profile="sales"))

    assert answer.outcome == "error"
    assert answer.error is not None
    assert answer.error.code == "not_allowed"
    assert answer.error.message == "agent profile 'sales' is not allowed to call 'notes.add'"
    assert await runs(redis, keys, "notes.add") == 0
    assert counted("notes.add", "denied") == before + 1
    [row] = await audit_rows(pg_pool, "acme")
    assert (row["outcome"], row["error_code"], row["agent_profile"]) == (
        "denied",
        "not_allowed",
        "sales",
    )
    assert row["result"] is None
    assert row["completed_at"] is not None
    assert '"email": "[redacted]"' in row["arguments"]


async def test_a_tool_nobody_registered_is_refused_without_keeping_its_arguments(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)

    answer = await gateway.handle(request(seeded, "notes.delete", {"secret": "x"}))

    assert answer.error is not None
    assert answer.error.code == "not_allowed"
    assert answer.error.message == "no tool named 'notes.delete' is registered"
    [row] = await audit_rows(pg_pool, "acme")
    assert (row["outcome"], row["error_code"]) == ("denied", "unknown_tool")
    assert row["arguments"] == '{"secret": "[redacted]"}'


async def test_invalid_arguments_are_refused_with_what_is_wrong(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)
    before = counted("notes.add", "invalid_arguments")

    answer = await gateway.handle(request(seeded, "notes.add", {"text": "", "mail": "x"}))

    assert answer.error is not None
    assert answer.error.code == "invalid_arguments"
    assert "text: String should have at least 1 character" in answer.error.message
    assert "email: Field required" in answer.error.message
    assert await runs(redis, keys, "notes.add") == 0
    assert counted("notes.add", "invalid_arguments") == before + 1
    [row] = await audit_rows(pg_pool, "acme")
    assert (row["outcome"], row["error_code"]) == ("invalid_arguments", "invalid_arguments")


async def test_a_call_runs_and_its_audit_row_has_personal_data_redacted(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)
    before = counted("notes.add", "succeeded")

    answer = await gateway.handle(request(seeded, "notes.add", NOTE))

    assert (answer.outcome, answer.result, answer.error) == (
        "ok",
        {"notes": 1, "text": "prefers mornings"},
        None,
    )
    assert (answer.dry_run, answer.replayed) == (False, False)
    assert await runs(redis, keys, "notes.add") == 1
    assert counted("notes.add", "succeeded") == before + 1
    [row] = await audit_rows(pg_pool, "acme")
    assert row["outcome"] == "succeeded"
    assert row["error_code"] is None
    assert (row["conversation_id"], row["turn_id"]) == (seeded.conversation_id, seeded.turn_id)
    assert row["idempotency_key"] == f"{seeded.turn_id}:call-1"
    assert row["fencing_token"] == seeded.fencing_token
    assert row["arguments"] == f'{{"text": "prefers mornings", "email": "{REDACTED}"}}'
    assert "maria@example.com" not in str(row)
    assert row["latency_ms"] >= 0
    assert row["attempts"] == 1
    assert row["dry_run"] is False


async def test_a_dry_run_simulates_writes_changes_nothing_and_is_marked(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)

    answer = await gateway.handle(request(seeded, "notes.add", NOTE, dry_run=True))
    read = await gateway.handle(request(seeded, "notes.count", call_id="c2", dry_run=True))

    assert (answer.outcome, answer.result, answer.dry_run) == (
        "ok",
        {"notes": 1, "text": "prefers mornings"},
        True,
    )
    assert await runs(redis, keys, "notes.add") == 0
    assert await redis.llen(f"{keys.namespace}:gateway-test:notes:acme") == 0
    assert (read.result, read.dry_run) == ({"notes": 0}, True)  # reads run, marked too
    rows = await audit_rows(pg_pool, "acme")
    assert [(r["tool"], r["dry_run"], r["idempotency_key"]) for r in rows] == [
        ("notes.add", True, f"dry-run:{seeded.turn_id}:call-1"),
        ("notes.count", True, f"dry-run:{seeded.turn_id}:c2"),
    ]

    # The live call with the same ids is not answered by the simulation: it runs.
    live = await gateway.handle(request(seeded, "notes.add", NOTE))
    assert (live.dry_run, live.replayed) == (False, False)
    assert await runs(redis, keys, "notes.add") == 1


async def test_a_tool_that_takes_too_long_times_out(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)
    before = counted("slow.wait", "timed_out")

    answer = await gateway.handle(request(seeded, "slow.wait", {"seconds": 5}))

    assert answer.error is not None
    assert answer.error.code == "timeout"
    assert answer.error.message == "slow.wait did not answer within 0.3s"
    assert counted("slow.wait", "timed_out") == before + 1
    [row] = await audit_rows(pg_pool, "acme")
    assert (row["outcome"], row["error_code"]) == ("timed_out", "timeout")
    assert row["result"] is not None  # it may have had effects: a repeat gets the same answer


async def test_the_breaker_of_an_external_tool_opens_and_then_spares_it(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)  # fail_max=3

    refused = await gateway.handle(request(seeded, "remote.ping", {"refuse": True}, call_id="r"))
    assert refused.error is not None
    assert refused.error.code == "failed"  # an answer, not an outage: not counted
    for attempt in range(3):
        down = await gateway.handle(request(seeded, "remote.ping", call_id=f"d{attempt}"))
        assert down.error is not None
        assert (down.error.code, down.error.retry_after_ms) == ("unavailable", 1_000)
    assert await runs(redis, keys, "remote.ping") == 4

    spared = await gateway.handle(request(seeded, "remote.ping", call_id="after"))

    assert spared.error is not None
    assert spared.error.code == "unavailable"
    assert "circuit breaker 'tool:remote.ping' is open" in spared.error.message
    assert spared.error.retry_after_ms == 60_000
    assert await runs(redis, keys, "remote.ping") == 4  # not called
    row = (await audit_rows(pg_pool, "acme"))[-1]
    assert (row["outcome"], row["error_code"], row["result"]) == (
        "unavailable",
        "circuit_open",
        None,
    )
    # Another gateway (a replica) sees the same open circuit through Redis.
    replica = make_gateway(redis, keys, pg_pool)
    again = await replica.handle(request(seeded, "remote.ping", call_id="replica"))
    assert again.error is not None
    assert "is open" in again.error.message
    assert await runs(redis, keys, "remote.ping") == 4


async def test_a_writing_tool_of_a_superseded_turn_is_refused_but_reads_proceed(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)
    lease = TurnLease(redis, keys)
    partition = gateway_partition(seeded.tenant_id, seeded.conversation_id)
    newer = await lease.open_turn(partition, "acme", seeded.conversation_id, "other", 60_000)
    assert newer is not None  # the Redis time token is far above the seeded token 1
    before = counted("notes.add", "stale")

    write = await gateway.handle(request(seeded, "notes.add", NOTE))
    read = await gateway.handle(request(seeded, "notes.count", call_id="c2"))

    assert write.error is not None
    assert write.error.code == "not_allowed"
    assert f"is older than {newer.token}" in write.error.message
    assert await runs(redis, keys, "notes.add") == 0
    assert counted("notes.add", "stale") == before + 1
    assert read.outcome == "ok"
    rows = await audit_rows(pg_pool, "acme")
    assert [(r["outcome"], r["error_code"]) for r in rows] == [
        ("stale", "stale_turn"),
        ("succeeded", None),
    ]
    # The newest turn's token is accepted.
    current = await gateway.handle(
        request(seeded, "notes.add", NOTE, call_id="c3", fencing_token=newer.token)
    )
    assert current.outcome == "ok"


async def test_the_conversations_token_in_postgres_also_fences(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await pg_pool.execute(
        "UPDATE conversations SET last_fencing_token = 7 WHERE tenant_id = 'acme'"
    )
    gateway = make_gateway(redis, keys, pg_pool)

    answer = await gateway.handle(request(seeded, "notes.add", NOTE))

    assert answer.error is not None
    assert "is older than 7" in answer.error.message


async def test_a_newer_turn_in_postgres_also_fences(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await pg_pool.execute(
        "UPDATE turns SET status = 'superseded', closed_at = now() WHERE tenant_id = 'acme'"
    )
    await pg_pool.execute(
        "INSERT INTO turns (tenant_id, turn_id, conversation_id, fencing_token, first_seq,"
        " last_seq) VALUES ('acme', 'acme-turn-2', $1, 9, 2, 2)",
        seeded.conversation_id,
    )
    gateway = make_gateway(redis, keys, pg_pool)

    answer = await gateway.handle(request(seeded, "notes.add", NOTE))

    assert answer.error is not None
    assert "is older than 9" in answer.error.message


async def test_a_call_of_an_unknown_turn_is_refused_and_audited_without_it(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)

    answer = await gateway.handle(request(seeded, "notes.add", NOTE, turn_id="ghost-turn"))

    assert answer.error is not None
    assert answer.error.code == "not_allowed"
    assert "turn 'ghost-turn' is not a turn of conversation" in answer.error.message
    assert await runs(redis, keys, "notes.add") == 0
    [row] = await audit_rows(pg_pool, "acme")
    assert (row["outcome"], row["error_code"]) == ("denied", "unknown_turn")
    assert (row["conversation_id"], row["turn_id"]) == (seeded.conversation_id, None)
    assert row["idempotency_key"] == "ghost-turn:call-1"


async def test_a_call_of_an_unknown_tenant_is_refused_and_only_counted(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)
    before = counted("notes.count", "denied")
    stranger = request(seeded, "notes.count").model_copy(update={"tenant_id": "nobody"})

    answer = await gateway.handle(stranger)

    assert answer.error is not None
    assert answer.error.message == "tenant 'nobody' is unknown"
    assert counted("notes.count", "denied") == before + 1
    assert await pg_pool.fetchval("SELECT count(*) FROM tool_calls") == 0


async def test_a_tool_refusing_its_arguments_is_an_answer_stored_for_repeats(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    gateway = make_gateway(redis, keys, pg_pool)
    nonsense = {"text": "nonsense", "email": "m@example.com"}

    answer = await gateway.handle(request(seeded, "notes.add", nonsense))
    again = await gateway.handle(request(seeded, "notes.add", nonsense))

    assert answer.error is not None
    assert (answer.error.code, answer.error.message) == (
        "invalid_arguments",
        "a note cannot be nonsense",
    )
    assert (again.error, again.replayed) == (answer.error, True)


def gateway_partition(tenant_id: str, conversation_id: str) -> int:
    """The partition the gateway's services use (the settings' partition count)."""
    return partition_for(tenant_id, conversation_id, Settings().stream_partitions)


async def test_a_call_over_its_rate_limit_is_refused_with_when_to_retry(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    agents = AgentProfilesConfig.model_validate(
        [
            {
                "tenant": "acme",
                "profile": "support",
                "tools": ["notes.count"],
                "rate_limits": {"notes.count": "2/minute"},
            }
        ]
    )
    gateway = make_gateway(redis, keys, pg_pool, agents=agents)
    before = counted("notes.count", "rate_limited")

    answers = [
        await gateway.handle(request(seeded, "notes.count", call_id=f"c{n}")) for n in range(3)
    ]
    ran = await runs(redis, keys, "notes.count")
    replay = await gateway.handle(request(seeded, "notes.count", dry_run=True, call_id="d"))

    assert [answer.outcome for answer in answers] == ["ok", "ok", "error"]
    limited = answers[2].error
    assert limited is not None
    assert limited.code == "rate_limited"
    assert limited.retry_after_ms is not None
    assert 0 < limited.retry_after_ms <= 60_000
    assert "limited to 2 per 1 minute" in limited.message
    assert ran == 2
    assert counted("notes.count", "rate_limited") == before + 1
    assert replay.outcome == "ok"  # dry runs (replays) count in a window of their own
    rows = await audit_rows(pg_pool, "acme")
    assert [row["outcome"] for row in rows] == [
        "succeeded",
        "succeeded",
        "rate_limited",
        "succeeded",
    ]


async def test_the_tenant_comes_from_the_envelope_never_from_the_arguments(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    await seed_conversation(pg_pool, "globex", phone="+5511999990002")
    gateway = make_gateway(redis, keys, pg_pool)
    forged = {**NOTE, "tenant_id": "globex", "tenant": "globex"}

    answer = await gateway.handle(request(seeded, "notes.add", forged))

    assert answer.outcome == "ok"
    assert await redis.llen(f"{keys.namespace}:gateway-test:notes:acme") == 1
    assert await redis.llen(f"{keys.namespace}:gateway-test:notes:globex") == 0
    assert await pg_pool.fetchval("SELECT count(*) FROM tool_calls WHERE tenant_id = 'globex'") == 0


class TaggedNote(notes.AddNote):
    """A later schema of ``notes.add``: a note now needs a tag."""

    tag: str


def _changed_admission(
    change: str, redis: aioredis.Redis, keys: KeySpace, pool: asyncpg.Pool
) -> ToolGateway:
    """A gateway that would no longer admit yesterday's ``notes.add`` call."""
    if change == "profile lost the tool":
        agents = AgentProfilesConfig.model_validate(
            [{"tenant": "acme", "profile": "support", "tools": ["notes.count"]}]
        )
        return make_gateway(redis, keys, pool, agents=agents)
    stricter = ToolRegistry([replace(notes.add, input_model=TaggedNote), notes.count])
    services = tool_services(redis, keys, pool, settings=SETTINGS)
    return ToolGateway(stricter, AGENTS, SETTINGS, services)


@pytest.mark.parametrize("change", ["profile lost the tool", "arguments no longer validate"])
async def test_an_answered_call_is_replayed_after_its_admission_changed(
    change: str, redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    first = await make_gateway(redis, keys, pg_pool).handle(request(seeded, "notes.add", NOTE))
    assert first.outcome == "ok"
    changed = _changed_admission(change, redis, keys, pg_pool)
    # The change is real: a new call is refused now.
    fresh = await changed.handle(request(seeded, "notes.add", NOTE, call_id="call-2"))
    assert fresh.error is not None
    refused_before = [counted("notes.add", o) for o in ("denied", "invalid_arguments")]
    replayed_before = counted("notes.add", "replayed")

    # The agent's request of the answered call is redelivered (or the turn is resumed).
    repeat = await changed.handle(request(seeded, "notes.add", NOTE))

    assert (repeat.outcome, repeat.result, repeat.error) == ("ok", first.result, None)
    assert (repeat.replayed, repeat.dry_run) == (True, False)
    assert await runs(redis, keys, "notes.add") == 1
    assert counted("notes.add", "replayed") == replayed_before + 1
    assert [counted("notes.add", o) for o in ("denied", "invalid_arguments")] == refused_before
    rows = {row["idempotency_key"]: row for row in await audit_rows(pg_pool, "acme")}
    assert sorted(rows) == [f"{seeded.turn_id}:call-1", f"{seeded.turn_id}:call-2"]
    answered = rows[f"{seeded.turn_id}:call-1"]
    assert (answered["outcome"], answered["error_code"], answered["attempts"]) == (
        "succeeded",
        None,
        1,
    )
    assert answered["result"] is not None
