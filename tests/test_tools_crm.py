"""crm.get_contact and crm.update_contact against a real Postgres."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from libs.keys import KeySpace
from tests.business_seed import openai_function_problems, seed_second_contact
from tests.tool_support import SeededConversation, seed_conversation, tool_context, tool_services
from tool_gateway.tool import ToolContext, ToolFailed
from tool_gateway.tools.crm import (
    GET_CONTACT,
    MAX_CUSTOM_FIELDS,
    UPDATE_CONTACT,
    GetContactInput,
    UpdateContactInput,
)


@pytest.fixture
async def seeded(pg_pool: asyncpg.Pool) -> SeededConversation:
    return await seed_conversation(pg_pool)


@pytest.fixture
async def context(
    seeded: SeededConversation, pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace
) -> ToolContext:
    return tool_context(seeded, tool_services(redis, keys, pg_pool))


async def _update(context: ToolContext, **arguments: Any) -> Any:
    data = UpdateContactInput.model_validate(arguments)
    if context.dry_run:
        assert UPDATE_CONTACT.simulate is not None
        return await UPDATE_CONTACT.simulate(context, data)
    return await UPDATE_CONTACT.run(context, data)


async def _row(pool: asyncpg.Pool, tenant_id: str, contact_id: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT * FROM contacts WHERE tenant_id = $1 AND contact_id = $2", tenant_id, contact_id
    )
    assert row is not None
    return dict(row)


def test_the_input_schemas_are_valid_openai_functions() -> None:
    assert openai_function_problems(GET_CONTACT) == []
    assert openai_function_problems(UPDATE_CONTACT) == []
    assert UPDATE_CONTACT.writes
    assert UPDATE_CONTACT.sensitive_fields() == {"name", "email", "custom_fields"}


async def test_the_contact_of_the_conversation_is_read(context: ToolContext) -> None:
    contact = await GET_CONTACT.run(context, GetContactInput())
    assert contact.contact_id == "acme-contact-1"
    assert (contact.name, contact.phone, contact.channel) == (
        "Maria Silva", "+5511999990001", "whatsapp",
    )  # fmt: skip
    assert (contact.email, contact.locale, contact.custom_fields) == (None, None, {})


async def test_an_update_merges_fields_and_keeps_the_rest(
    context: ToolContext, pg_pool: asyncpg.Pool
) -> None:
    first = await _update(
        context,
        name="Maria S. Oliveira",
        email="maria@example.com",
        locale="pt-BR",
        custom_fields={"plan": "gold", "vip": True, "visits": 3},
    )
    assert first.changed == [
        "name", "email", "locale",
        "custom_fields.plan", "custom_fields.vip", "custom_fields.visits",
    ]  # fmt: skip
    assert not first.simulated

    second = await _update(context, custom_fields={"plan": None, "store": "Centro", "vip": True})
    assert second.changed == ["custom_fields.plan", "custom_fields.store"]
    contact = await GET_CONTACT.run(context, GetContactInput())
    assert contact.custom_fields == {"vip": True, "visits": 3, "store": "Centro"}
    assert (contact.name, contact.email, contact.locale) == (
        "Maria S. Oliveira", "maria@example.com", "pt-BR",
    )  # fmt: skip
    # The provider identity is untouched.
    row = await _row(pg_pool, "acme", "acme-contact-1")
    assert (row["provider"], row["provider_contact_id"], row["phone"]) == (
        "whatsapp", "5511999990001", "+5511999990001",
    )  # fmt: skip


async def test_an_update_that_changes_nothing_says_so(context: ToolContext) -> None:
    await _update(context, custom_fields={"visits": 1})
    again = await _update(context, custom_fields={"visits": 1, "gone": None})
    assert again.changed == []
    # True and 1 are equal in Python but not in the JSON the business reads.
    assert (await _update(context, custom_fields={"visits": True})).changed == [
        "custom_fields.visits"
    ]


async def test_custom_fields_are_bounded(context: ToolContext, pg_pool: asyncpg.Pool) -> None:
    for batch in range(MAX_CUSTOM_FIELDS // 10):
        await _update(context, custom_fields={f"field_{batch}_{i}": i for i in range(10)})
    before = await _row(pg_pool, "acme", "acme-contact-1")
    with pytest.raises(ToolFailed, match=f"more than the {MAX_CUSTOM_FIELDS} allowed"):
        await _update(context, custom_fields={"one_more": "x"}, name="Changed")
    assert await _row(pg_pool, "acme", "acme-contact-1") == before
    # Removing one makes room again.
    replaced = await _update(context, custom_fields={"field_0_0": None, "one_more": "x"})
    assert len(replaced.contact.custom_fields) == MAX_CUSTOM_FIELDS


async def test_custom_fields_too_large_for_the_column_are_refused_not_crashed(
    context: ToolContext, pg_pool: asyncpg.Pool
) -> None:
    long_text = "x" * 480
    for batch in range(4):
        await _update(context, custom_fields={f"note_{batch}_{i}": long_text for i in range(8)})
    before = await _row(pg_pool, "acme", "acme-contact-1")
    with pytest.raises(ToolFailed, match="bytes, more than the 16384 allowed"):
        await _update(context, custom_fields={f"note_9_{i}": long_text for i in range(8)})
    assert await _row(pg_pool, "acme", "acme-contact-1") == before


def test_arguments_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        UpdateContactInput()
    with pytest.raises(ValidationError, match="extra"):
        UpdateContactInput.model_validate({"phone": "+5511000000000"})
    with pytest.raises(ValidationError, match="extra"):
        UpdateContactInput.model_validate({"provider_contact_id": "someone-else"})
    with pytest.raises(ValidationError, match="email"):
        UpdateContactInput(email="not an email")
    with pytest.raises(ValidationError, match="locale"):
        UpdateContactInput(locale="portuguese")
    with pytest.raises(ValidationError, match="custom_fields"):
        UpdateContactInput(custom_fields={"Bad Key": "x"})
    with pytest.raises(ValidationError, match="custom_fields"):
        UpdateContactInput(custom_fields={"note": "x" * 501})
    with pytest.raises(ValidationError, match="custom_fields"):
        UpdateContactInput(custom_fields={f"k{i}": i for i in range(21)})


async def test_a_dry_run_changes_nothing(context: ToolContext, pg_pool: asyncpg.Pool) -> None:
    await _update(context, custom_fields={"plan": "gold"})
    before = await _row(pg_pool, "acme", "acme-contact-1")
    count = await pg_pool.fetchval("SELECT count(*) FROM contacts")

    preview = await _update(
        replace(context, dry_run=True), email="new@example.com", custom_fields={"plan": None}
    )

    assert preview.simulated
    assert preview.changed == ["email", "custom_fields.plan"]
    assert preview.contact.custom_fields == {}
    assert await _row(pg_pool, "acme", "acme-contact-1") == before
    assert await pg_pool.fetchval("SELECT count(*) FROM contacts") == count


async def test_only_the_conversations_contact_is_read_or_changed(
    seeded: SeededConversation,
    context: ToolContext,
    pg_pool: asyncpg.Pool,
    redis: aioredis.Redis,
    keys: KeySpace,
) -> None:
    other = await seed_second_contact(pg_pool, seeded)
    globex = await seed_conversation(pg_pool, "globex", phone="+5511999990001")
    services = tool_services(redis, keys, pg_pool)
    untouched = {
        ("acme", other.contact_id): await _row(pg_pool, "acme", other.contact_id),
        ("globex", globex.contact_id): await _row(pg_pool, "globex", globex.contact_id),
    }

    await _update(context, name="Only Maria", custom_fields={"plan": "gold"})

    for (tenant_id, contact_id), row in untouched.items():
        assert await _row(pg_pool, tenant_id, contact_id) == row
    other_contact = await GET_CONTACT.run(tool_context(other, services), GetContactInput())
    assert (other_contact.name, other_contact.custom_fields) == ("João Souza", {})
    globex_contact = await GET_CONTACT.run(tool_context(globex, services), GetContactInput())
    assert (globex_contact.contact_id, globex_contact.custom_fields) == ("globex-contact-1", {})


async def test_a_conversation_of_another_tenant_finds_no_contact(context: ToolContext) -> None:
    # The conversation id exists, but under acme: a globex caller must not reach it.
    foreign = replace(context, tenant_id="globex")
    with pytest.raises(ToolFailed, match="does not exist for this tenant"):
        await GET_CONTACT.run(foreign, GetContactInput())
    with pytest.raises(ToolFailed, match="does not exist for this tenant"):
        await _update(foreign, name="Intruder")


async def test_a_call_outside_a_conversation_has_no_contact(context: ToolContext) -> None:
    with pytest.raises(ToolFailed, match="not part of a conversation"):
        await GET_CONTACT.run(replace(context, conversation_id=None), GetContactInput())


async def test_fields_written_by_other_systems_are_read_and_kept(
    context: ToolContext, pg_pool: asyncpg.Pool
) -> None:
    imported = {"addresses": [{"city": "Recife"}], "notes": "n" * 2000}
    await pg_pool.execute(
        "UPDATE contacts SET custom_fields = $1::jsonb WHERE tenant_id = 'acme'",
        json.dumps(imported),
    )
    assert (await GET_CONTACT.run(context, GetContactInput())).custom_fields == imported
    updated = await _update(context, custom_fields={"plan": "gold"})
    assert updated.contact.custom_fields == {**imported, "plan": "gold"}
