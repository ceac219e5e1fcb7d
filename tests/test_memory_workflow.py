"""Workflow state: only the current turn writes it, and of two writers of a version one wins."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from libs.errors import StaleFencingToken
from memory_manager.errors import UnknownConversation, WorkflowConflict, WorkflowNotFound
from memory_manager.workflow import WorkflowStore
from tests.tool_support import SeededConversation, seed_conversation


async def open_turn(pool: asyncpg.Pool, seeded: SeededConversation, token: int) -> None:
    """Close the seeded turn and open a newer one with ``token``, as the dispatcher would."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "UPDATE turns SET status = 'superseded', closed_at = now()"
            " WHERE tenant_id = $1 AND conversation_id = $2 AND status = 'opened'",
            seeded.tenant_id,
            seeded.conversation_id,
        )
        await connection.execute(
            "INSERT INTO turns (tenant_id, turn_id, conversation_id, fencing_token, first_seq,"
            " last_seq) VALUES ($1, $2, $3, $4, 2, 2)",
            seeded.tenant_id,
            f"turn-{token}",
            seeded.conversation_id,
            token,
        )


async def test_a_flow_is_created_read_and_moved_on_with_versions(pg_pool: asyncpg.Pool) -> None:
    seeded = await seed_conversation(pg_pool, fencing_token=3)
    store = WorkflowStore(pg_pool)
    assert await store.read("acme", seeded.conversation_id) is None
    created = await store.create(
        "acme", seeded.conversation_id, flow="booking", step="ask_date", data={}, fencing_token=3
    )
    assert (created.version, created.fencing_token) == (1, 3)
    moved = await store.update(
        "acme",
        seeded.conversation_id,
        expected_version=1,
        fencing_token=3,
        step="ask_time",
        data={"date": "2026-12-01"},
    )
    assert (moved.flow, moved.step, moved.version) == ("booking", "ask_time", 2)
    assert await store.read("acme", seeded.conversation_id) == moved
    assert await store.read("globex", seeded.conversation_id) is None
    with pytest.raises(WorkflowConflict, match="already in a flow"):
        await store.create(
            "acme", seeded.conversation_id, flow="other", step="x", data={}, fencing_token=3
        )


async def test_a_stale_turn_write_is_refused_and_changes_nothing(pg_pool: asyncpg.Pool) -> None:
    seeded = await seed_conversation(pg_pool, fencing_token=1)
    store = WorkflowStore(pg_pool)
    await store.create("acme", seeded.conversation_id, flow="f", step="a", data={}, fencing_token=1)
    await store.update(
        "acme", seeded.conversation_id, expected_version=1, fencing_token=5, step="b", data={}
    )
    with pytest.raises(StaleFencingToken, match="fencing token 4 is older than the current 5"):
        await store.update(
            "acme", seeded.conversation_id, expected_version=2, fencing_token=4, step="c", data={}
        )
    state = await store.read("acme", seeded.conversation_id)
    assert state is not None
    assert (state.step, state.version, state.fencing_token) == ("b", 2, 5)


async def test_a_turn_older_than_the_conversation_newest_turn_cannot_write(
    pg_pool: asyncpg.Pool,
) -> None:
    seeded = await seed_conversation(pg_pool, fencing_token=1)
    store = WorkflowStore(pg_pool)
    await store.create("acme", seeded.conversation_id, flow="f", step="a", data={}, fencing_token=1)
    await open_turn(pg_pool, seeded, token=2)  # the new turn has not written the workflow yet
    with pytest.raises(StaleFencingToken, match="token 1 is older than the current 2"):
        await store.update(
            "acme", seeded.conversation_id, expected_version=1, fencing_token=1, step="b", data={}
        )
    await pg_pool.execute(
        "UPDATE conversations SET last_fencing_token = 9 WHERE conversation_id = $1",
        seeded.conversation_id,
    )
    with pytest.raises(StaleFencingToken, match="token 2 is older than the current 9"):
        await store.update(
            "acme", seeded.conversation_id, expected_version=1, fencing_token=2, step="b", data={}
        )
    with pytest.raises(StaleFencingToken):
        await store.delete("acme", seeded.conversation_id, expected_version=1, fencing_token=8)
    state = await store.read("acme", seeded.conversation_id)
    assert state is not None
    assert (state.step, state.version) == ("a", 1)


async def test_a_stale_version_is_refused_with_a_conflict(pg_pool: asyncpg.Pool) -> None:
    seeded = await seed_conversation(pg_pool)
    store = WorkflowStore(pg_pool)
    await store.create("acme", seeded.conversation_id, flow="f", step="a", data={}, fencing_token=1)
    await store.update(
        "acme", seeded.conversation_id, expected_version=1, fencing_token=1, step="b", data={}
    )
    with pytest.raises(WorkflowConflict, match="expected version 1, found 2"):
        await store.update(
            "acme", seeded.conversation_id, expected_version=1, fencing_token=1, step="c", data={}
        )


async def test_of_two_concurrent_writers_of_one_version_exactly_one_wins(
    pg_pool: asyncpg.Pool,
) -> None:
    seeded = await seed_conversation(pg_pool)
    store = WorkflowStore(pg_pool)
    await store.create("acme", seeded.conversation_id, flow="f", step="a", data={}, fencing_token=1)
    for round_ in range(5):
        current = await store.read("acme", seeded.conversation_id)
        assert current is not None
        results = await asyncio.gather(
            *(
                store.update(
                    "acme",
                    seeded.conversation_id,
                    expected_version=current.version,
                    fencing_token=1,
                    step=f"writer-{writer}",
                    data={"round": round_},
                )
                for writer in range(2)
            ),
            return_exceptions=True,
        )
        won = [result for result in results if not isinstance(result, BaseException)]
        lost = [result for result in results if isinstance(result, BaseException)]
        assert len(won) == 1, results
        assert len(lost) == 1
        assert isinstance(lost[0], WorkflowConflict)
        after = await store.read("acme", seeded.conversation_id)
        assert after is not None
        assert after.version == current.version + 1
        assert after.step == won[0].step


async def test_deleting_ends_the_flow_and_unknown_rows_are_named(pg_pool: asyncpg.Pool) -> None:
    seeded = await seed_conversation(pg_pool)
    store = WorkflowStore(pg_pool)
    with pytest.raises(WorkflowNotFound, match="has no workflow state"):
        await store.update(
            "acme", seeded.conversation_id, expected_version=1, fencing_token=1, step="b", data={}
        )
    with pytest.raises(UnknownConversation, match="'nope' of tenant 'acme' does not exist"):
        await store.create("acme", "nope", flow="f", step="a", data={}, fencing_token=1)
    await store.create("acme", seeded.conversation_id, flow="f", step="a", data={}, fencing_token=1)
    await store.delete("acme", seeded.conversation_id, expected_version=1, fencing_token=1)
    assert await store.read("acme", seeded.conversation_id) is None
