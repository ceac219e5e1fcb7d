"""orders.get_status against a real Postgres: the contact's own orders only."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from libs.keys import KeySpace
from tests.business_seed import insert_order, openai_function_problems, seed_second_contact
from tests.tool_support import SeededConversation, seed_conversation, tool_context, tool_services
from tool_gateway.tool import ToolArgumentsInvalid, ToolContext, ToolFailed
from tool_gateway.tools.orders import GET_STATUS, OrderStatusInput


@pytest.fixture
async def seeded(pg_pool: asyncpg.Pool) -> SeededConversation:
    seeded = await seed_conversation(pg_pool)
    await insert_order(pg_pool, seeded.tenant_id, seeded.contact_id, "10482")
    return seeded


@pytest.fixture
async def context(
    seeded: SeededConversation, pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace
) -> ToolContext:
    return tool_context(seeded, tool_services(redis, keys, pg_pool))


def test_the_input_schema_is_a_valid_openai_function() -> None:
    assert openai_function_problems(GET_STATUS) == []
    assert not GET_STATUS.writes


async def test_an_order_shows_status_items_totals_and_tracking(context: ToolContext) -> None:
    order = await GET_STATUS.run(context, OrderStatusInput(order_number="#10482"))
    assert (order.order_number, order.status) == ("10482", "shipped")
    assert order.status_meaning == "on its way with the carrier"
    assert [(item.sku, item.quantity, item.line_total) for item in order.items] == [
        ("CAM-01", 2, Decimal("159.80")),
        ("TEN-01", 1, Decimal("299.90")),
    ]
    assert (order.subtotal, order.shipping, order.discount, order.total, order.currency) == (
        Decimal("459.70"), Decimal("15.00"), Decimal("10.00"), Decimal("464.70"), "BRL",
    )  # fmt: skip
    assert order.tracking is not None
    assert (order.tracking.carrier, order.tracking.code) == ("Correios", "BR123456789")
    assert order.estimated_delivery == date(2030, 1, 15)
    # What the gateway stores and the LLM reads: decimals as exact strings.
    assert order.model_dump(mode="json")["total"] == "464.70"


async def test_an_order_not_yet_shipped_has_no_tracking(
    seeded: SeededConversation, context: ToolContext, pg_pool: asyncpg.Pool
) -> None:
    await insert_order(pg_pool, "acme", seeded.contact_id, "A-7", status="paid", tracking_code=None)
    order = await GET_STATUS.run(context, OrderStatusInput(order_number="A-7"))
    assert (order.status, order.tracking) == ("paid", None)


async def test_an_unknown_number_is_refused(context: ToolContext) -> None:
    with pytest.raises(ToolArgumentsInvalid, match="no order number '99999'"):
        await GET_STATUS.run(context, OrderStatusInput(order_number="99999"))


def test_a_malformed_number_is_refused() -> None:
    for bad in ("", "10 482", "1'; DROP TABLE orders", "x" * 70):
        with pytest.raises(ValidationError, match="order_number"):
            OrderStatusInput(order_number=bad)
    with pytest.raises(ValidationError, match="extra"):
        OrderStatusInput.model_validate({"order_number": "1", "contact_id": "acme-contact-2"})


async def test_a_contact_cannot_read_another_contacts_order(
    seeded: SeededConversation,
    context: ToolContext,
    pg_pool: asyncpg.Pool,
    redis: aioredis.Redis,
    keys: KeySpace,
) -> None:
    other = await seed_second_contact(pg_pool, seeded)
    await insert_order(pg_pool, "acme", other.contact_id, "20001")
    other_context = tool_context(other, tool_services(redis, keys, pg_pool))

    # Someone else's order reads exactly like a number that does not exist.
    with pytest.raises(ToolArgumentsInvalid, match="no order number '10482'"):
        await GET_STATUS.run(other_context, OrderStatusInput(order_number="10482"))
    with pytest.raises(ToolArgumentsInvalid, match="no order number '20001'"):
        await GET_STATUS.run(context, OrderStatusInput(order_number="20001"))
    mine = await GET_STATUS.run(other_context, OrderStatusInput(order_number="20001"))
    assert mine.order_number == "20001"


async def test_another_tenants_order_is_invisible(
    context: ToolContext, pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace
) -> None:
    globex = await seed_conversation(pg_pool, "globex", phone="+5511999990001")
    await insert_order(pg_pool, "globex", globex.contact_id, "777", status="delivered")
    globex_context = tool_context(globex, tool_services(redis, keys, pg_pool))

    with pytest.raises(ToolArgumentsInvalid, match="no order number '777'"):
        await GET_STATUS.run(context, OrderStatusInput(order_number="777"))
    with pytest.raises(ToolArgumentsInvalid, match="no order number '10482'"):
        await GET_STATUS.run(globex_context, OrderStatusInput(order_number="10482"))
    # The same number may exist in both tenants; each sees its own.
    await insert_order(pg_pool, "globex", globex.contact_id, "10482", status="delivered")
    theirs = await GET_STATUS.run(globex_context, OrderStatusInput(order_number="10482"))
    ours = await GET_STATUS.run(context, OrderStatusInput(order_number="10482"))
    assert (theirs.status, ours.status) == ("delivered", "shipped")
    # A conversation id of acme, presented under globex's tenant, reaches nothing.
    with pytest.raises(ToolFailed, match="does not exist for this tenant"):
        await GET_STATUS.run(
            replace(context, tenant_id="globex"), OrderStatusInput(order_number="10482")
        )
