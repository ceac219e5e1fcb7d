"""Facts per contact: upserted by key; never older, never less sure (unless an operator says so)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from memory_manager.facts import NewFact, list_facts, upsert_facts
from tests.tool_support import seed_conversation

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def fact(
    key: str, value: str, *, confidence: float = 1.0, source: str = "agent", at: int = 0
) -> NewFact:
    """A fact observed ``at`` minutes after T0."""
    return NewFact(key, value, source, confidence, T0 + timedelta(minutes=at))


async def test_facts_are_upserted_and_listed_surest_first(pg_pool: asyncpg.Pool) -> None:
    seeded = await seed_conversation(pg_pool)
    async with pg_pool.acquire() as connection:
        changed = await upsert_facts(
            connection,
            "acme",
            seeded.contact_id,
            [fact("contact.city", "Recife", confidence=0.6), fact("contact.language", "pt-BR")],
            conversation_id=seeded.conversation_id,
        )
        assert sorted(changed) == ["contact.city", "contact.language"]
        stored = await list_facts(connection, "acme", seeded.contact_id)
    assert [(f.key, f.value, f.confidence) for f in stored] == [
        ("contact.language", "pt-BR", 1.0),
        ("contact.city", "Recife", pytest.approx(0.6)),
    ]
    assert stored[0].source_conversation_id == seeded.conversation_id


async def test_a_newer_fact_replaces_and_a_repeat_changes_nothing(pg_pool: asyncpg.Pool) -> None:
    seeded = await seed_conversation(pg_pool)
    async with pg_pool.acquire() as connection:
        await upsert_facts(connection, "acme", seeded.contact_id, [fact("contact.city", "Recife")])
        newer = [fact("contact.city", "Olinda", at=5)]
        assert await upsert_facts(connection, "acme", seeded.contact_id, newer) == ["contact.city"]
        assert await upsert_facts(connection, "acme", seeded.contact_id, newer) == []
        older = [fact("contact.city", "Recife", at=1)]  # a late redelivery of an earlier update
        assert await upsert_facts(connection, "acme", seeded.contact_id, older) == []
        [stored] = await list_facts(connection, "acme", seeded.contact_id)
    assert (stored.value, stored.updated_at) == ("Olinda", T0 + timedelta(minutes=5))


async def test_a_newer_repeat_of_the_value_keeps_a_late_older_fact_out(
    pg_pool: asyncpg.Pool,
) -> None:
    seeded = await seed_conversation(pg_pool)
    async with pg_pool.acquire() as connection:
        contact = seeded.contact_id
        await upsert_facts(connection, "acme", contact, [fact("contact.city", "Recife")])
        repeat = [fact("contact.city", "Recife", at=10)]
        assert await upsert_facts(connection, "acme", contact, repeat) == []
        late = [fact("contact.city", "Olinda", at=5)]  # observed before the repeat
        assert await upsert_facts(connection, "acme", contact, late) == []
        [stored] = await list_facts(connection, "acme", contact)
    assert (stored.value, stored.updated_at) == ("Recife", T0 + timedelta(minutes=10))


async def test_a_less_sure_fact_does_not_overwrite_unless_an_operator_says_so(
    pg_pool: asyncpg.Pool,
) -> None:
    seeded = await seed_conversation(pg_pool)
    contact = seeded.contact_id
    async with pg_pool.acquire() as connection:
        await upsert_facts(connection, "acme", contact, [fact("contact.name", "Maria", at=0)])
        guess = [fact("contact.name", "Mariana", confidence=0.4, at=1)]
        assert await upsert_facts(connection, "acme", contact, guess) == []
        assert (await list_facts(connection, "acme", contact))[0].value == "Maria"
        correction = [fact("contact.name", "Marina", confidence=0.5, source="operator", at=2)]
        assert await upsert_facts(connection, "acme", contact, correction) == ["contact.name"]
        [stored] = await list_facts(connection, "acme", contact)
    assert (stored.value, stored.source) == ("Marina", "operator")


async def test_facts_are_kept_per_tenant(pg_pool: asyncpg.Pool) -> None:
    acme = await seed_conversation(pg_pool, "acme")
    globex = await seed_conversation(pg_pool, "globex")
    async with pg_pool.acquire() as connection:
        await upsert_facts(connection, "acme", acme.contact_id, [fact("contact.city", "Recife")])
        await upsert_facts(connection, "globex", globex.contact_id, [fact("contact.city", "Natal")])
        assert [f.value for f in await list_facts(connection, "acme", acme.contact_id)] == [
            "Recife"
        ]
        assert await list_facts(connection, "acme", globex.contact_id) == []
