"""Business rows for the catalog, CRM, appointment and order tool tests."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

from tests.tool_support import SeededConversation
from tool_gateway.tool import Tool

DIMENSIONS = 384


async def seed_second_contact(
    pool: asyncpg.Pool, seeded: SeededConversation, *, phone: str = "+5511999990002"
) -> SeededConversation:
    """Another contact of the same tenant, with a conversation of their own on the channel."""
    other = replace(
        seeded,
        contact_id=f"{seeded.tenant_id}-contact-2",
        conversation_id=f"{seeded.tenant_id}-conversation-2",
        turn_id=f"{seeded.tenant_id}-turn-2",
    )
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO contacts (tenant_id, contact_id, provider, provider_contact_id,"
            " display_name, phone) VALUES ($1, $2, 'whatsapp', $3, 'João Souza', $4)",
            other.tenant_id,
            other.contact_id,
            phone.removeprefix("+"),
            phone,
        )
        await connection.execute(
            "INSERT INTO conversations (tenant_id, conversation_id, channel_id, contact_id)"
            " VALUES ($1, $2, $3, $4)",
            other.tenant_id,
            other.conversation_id,
            other.channel_id,
            other.contact_id,
        )
    return other


async def insert_product(
    pool: asyncpg.Pool,
    tenant_id: str,
    product_id: str,
    name: str,
    *,
    price: str,
    description: str = "",
    category: str | None = None,
    tags: Sequence[str] = (),
    language: str = "portuguese",
    stock_quantity: int | None = 10,
    active: bool = True,
    embedding: list[float] | None = None,
) -> None:
    """One product of ``tenant_id`` (in BRL), optionally with its embedding."""
    await pool.execute(
        "INSERT INTO products (tenant_id, product_id, sku, name, description, category, tags,"
        " language, price, currency, stock_quantity, active, embedding, embedding_model)"
        " VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, 'BRL', $9, $10, $11, $12)",
        tenant_id,
        product_id,
        name,
        description,
        category,
        list(tags),
        language,
        Decimal(price),
        stock_quantity,
        active,
        embedding,
        None if embedding is None else "test-synonyms",
    )


class SynonymEmbedder:
    """A deterministic embedder whose vectors are close for texts that share a concept.

    Each word is mapped to its concept (``synonyms``; unknown words are their own concept) and
    hashed to a dimension, so "sneakers" and "tênis" land on the same axis: enough to tell
    meaning from spelling in a test, with no model to download.
    """

    def __init__(self, synonyms: dict[str, str]) -> None:
        self._synonyms = synonyms
        self.calls = 0

    def vector(self, text: str) -> list[float]:
        """The unit vector of ``text``."""
        values = [0.0] * DIMENSIONS
        for word in re.findall(r"\w+", text.lower()):
            concept = self._synonyms.get(word, word)
            digest = hashlib.sha256(concept.encode()).digest()
            values[int.from_bytes(digest[:4], "big") % DIMENSIONS] += 1.0
        norm = math.sqrt(sum(value * value for value in values)) or 1.0
        return [value / norm for value in values]

    async def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return [self.vector(text) for text in texts]


async def seed_schedule(
    pool: asyncpg.Pool,
    tenant_id: str,
    *,
    time_zone: str = "America/Sao_Paulo",
    resource_id: str = "ana",
    resource_name: str = "Ana",
    windows: Sequence[tuple[int, time, time]] | None = None,
) -> None:
    """A 60-minute 'Haircut' and a 30-minute 'Beard trim' offered by one professional.

    Default hours: every day 09:00-12:00 and 13:00-18:00 (a lunch break) in ``time_zone``.
    """
    if windows is None:
        windows = [
            (weekday, opens, closes)
            for weekday in range(1, 8)
            for opens, closes in ((time(9), time(12)), (time(13), time(18)))
        ]
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO services (tenant_id, service_id, name, duration_minutes) VALUES"
            " ($1, 'haircut', 'Haircut', 60), ($1, 'beard', 'Beard trim', 30)"
            " ON CONFLICT DO NOTHING",
            tenant_id,
        )
        await connection.execute(
            "INSERT INTO resources (tenant_id, resource_id, name, time_zone)"
            " VALUES ($1, $2, $3, $4)",
            tenant_id,
            resource_id,
            resource_name,
            time_zone,
        )
        await connection.executemany(
            "INSERT INTO resource_services (tenant_id, resource_id, service_id)"
            " VALUES ($1, $2, $3)",
            [(tenant_id, resource_id, service) for service in ("haircut", "beard")],
        )
        await connection.executemany(
            "INSERT INTO working_hours (tenant_id, resource_id, weekday, opens_at, closes_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            [(tenant_id, resource_id, *window) for window in windows],
        )


def future_day(days_ahead: int = 7) -> date:
    """A date far enough ahead that all of its working hours are in the future."""
    return datetime.now(UTC).date() + timedelta(days=days_ahead)


def local(day: date, at: time, zone: str = "America/Sao_Paulo") -> datetime:
    """``day`` at wall-clock ``at`` in ``zone``."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone))


async def insert_order(
    pool: asyncpg.Pool,
    tenant_id: str,
    contact_id: str,
    order_number: str,
    *,
    status: str = "shipped",
    tracking_code: str | None = "BR123456789",
) -> None:
    """An order of two lines (2 x 79.90 + 1 x 299.90, 15.00 shipping, 10.00 discount)."""
    async with pool.acquire() as connection, connection.transaction():
        order_id = await connection.fetchval(
            "INSERT INTO orders (tenant_id, order_number, contact_id, status, currency,"
            " subtotal, shipping_total, discount_total, total, carrier, tracking_code,"
            " tracking_url, estimated_delivery)"
            " VALUES ($1, $2, $3, $4, 'BRL', 459.70, 15.00, 10.00, 464.70, $5, $6, $7, $8)"
            " RETURNING order_id",
            tenant_id,
            order_number,
            contact_id,
            status,
            "Correios" if tracking_code else None,
            tracking_code,
            f"https://rastreamento.example/{tracking_code}" if tracking_code else None,
            date(2030, 1, 15),
        )
        await connection.executemany(
            "INSERT INTO order_items (tenant_id, order_id, line_no, sku, name, quantity,"
            " unit_price) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (tenant_id, order_id, 1, "CAM-01", "Camiseta Dry-Fit", 2, Decimal("79.90")),
                (tenant_id, order_id, 2, "TEN-01", "Tênis de Corrida", 1, Decimal("299.90")),
            ],
        )


def openai_function_problems(tool: Tool[Any, Any]) -> list[str]:
    """What keeps ``tool``'s definition from being a valid OpenAI function; empty when valid."""
    definition = tool.function_definition()["function"]
    parameters = definition["parameters"]
    problems: list[str] = []
    if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", definition["name"]):
        problems.append(f"function name {definition['name']!r} has characters OpenAI refuses")
    if not definition["description"].strip():
        problems.append("the function has no description")
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as exc:
        problems.append(f"parameters are not a valid JSON Schema: {exc.message}")
    if parameters.get("type") != "object" or not isinstance(parameters.get("properties"), dict):
        problems.append("parameters must be an object schema with properties")
    if not parameters.get("description"):
        problems.append("the parameters object has no description")
    if parameters.get("additionalProperties") is not False:
        problems.append("unknown arguments are not refused (additionalProperties)")
    problems += [
        f"property {name!r} has no description"
        for name, schema in parameters.get("properties", {}).items()
        if not schema.get("description")
    ]
    return problems
