"""catalog.search against a real Postgres: words in three languages, filters, meaning, tenants."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from libs.keys import KeySpace
from tests.business_seed import SynonymEmbedder, insert_product, openai_function_problems
from tests.tool_support import seed_conversation, tool_context, tool_services
from tool_gateway.tool import ToolContext, ToolUnavailable
from tool_gateway.tools.catalog import SEARCH, CatalogSearchInput, CatalogSearchOutput

SYNONYMS = {"sneakers": "tênis", "running": "corrida", "shoes": "tênis", "coffee": "café"}
EMBED = SynonymEmbedder(SYNONYMS)


async def _catalog(pool: asyncpg.Pool, tenant_id: str, *, with_embeddings: bool = False) -> None:
    products = [
        ("tenis", "Tênis de Corrida Azul", "299.90", "Leve e confortável.", "calçados",
         ["esporte", "azul"], 5),
        ("camiseta", "Camiseta Dry-Fit", "79.90", "Camiseta esportiva que seca rápido.",
         "roupas", ["esporte"], 20),
        ("cafe", "Café Especial", "39.90", "Grãos torrados do sul de Minas.", "mercearia",
         [], 0),
        ("caneca", "Caneca de Cerâmica", "49.90", "Para o seu café.", "casa", [], None),
    ]  # fmt: skip
    for product_id, name, price, description, category, tags, stock in products:
        await insert_product(
            pool,
            tenant_id,
            product_id,
            name,
            price=price,
            description=description,
            category=category,
            tags=tags,
            stock_quantity=stock,
            embedding=EMBED.vector(f"{name} {description}") if with_embeddings else None,
        )
    await insert_product(
        pool, tenant_id, "old", "Tênis Antigo", price="99.00", category="calçados", active=False
    )
    await insert_product(
        pool,
        tenant_id,
        "zapatillas",
        "Zapatillas para correr",
        price="250.00",
        description="Zapatillas ligeras.",
        category="calçados",
        language="spanish",
    )


@pytest.fixture
async def context(pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace) -> ToolContext:
    seeded = await seed_conversation(pg_pool)
    await _catalog(pg_pool, seeded.tenant_id)
    return tool_context(seeded, tool_services(redis, keys, pg_pool))


async def _search(context: ToolContext, **arguments: object) -> CatalogSearchOutput:
    return await SEARCH.run(context, CatalogSearchInput.model_validate(arguments))


def _ids(output: CatalogSearchOutput) -> list[str]:
    return [product.product_id for product in output.products]


def test_the_input_schema_is_a_valid_openai_function() -> None:
    assert openai_function_problems(SEARCH) == []
    assert not SEARCH.writes


async def test_words_match_without_accents_or_case_and_every_word_must_match(
    context: ToolContext,
) -> None:
    output = await _search(context, query="TENIS corrida")
    assert _ids(output) == ["tenis"]
    assert output.text_match == "all_words"
    hit = output.products[0]
    assert (hit.name, hit.price, hit.currency, hit.in_stock) == (
        "Tênis de Corrida Azul", Decimal("299.90"), "BRL", True,
    )  # fmt: skip
    assert hit.score > 0
    assert _ids(await _search(context, query="café")) == ["cafe", "caneca"]


async def test_plurals_match_through_the_products_language(context: ToolContext) -> None:
    assert _ids(await _search(context, query="camisetas")) == ["camiseta"]
    assert _ids(await _search(context, query="zapatilla")) == ["zapatillas"]


async def test_stop_words_do_not_have_to_match(context: ToolContext) -> None:
    # "uma", "para" and "o" appear in no product; "café" and "casa" both describe the mug.
    output = await _search(context, query="uma caneca para o café de casa")
    assert output.text_match == "all_words"
    assert _ids(output) == ["caneca"]
    assert _ids(await _search(context, query="the coffee for the house")) == []


async def test_without_a_product_having_every_word_any_word_counts(context: ToolContext) -> None:
    output = await _search(context, query="tênis vermelho")
    assert output.text_match == "any_word"
    assert _ids(output) == ["tenis"]


async def test_a_name_ranks_above_a_mention_in_the_description(context: ToolContext) -> None:
    output = await _search(context, query="café")
    assert output.products[0].score > output.products[1].score


async def test_nothing_found_is_an_empty_answer(context: ToolContext) -> None:
    output = await _search(context, query="bicicleta elétrica")
    assert output.products == []


async def test_filters_narrow_the_results(context: ToolContext) -> None:
    by_category = await _search(context, category="CALÇADOS")
    assert _ids(by_category) == ["tenis", "zapatillas"]  # inactive products never show
    assert by_category.text_match == "none"
    assert _ids(await _search(context, min_price=40, max_price=100)) == ["camiseta", "caneca"]
    in_stock = await _search(context, in_stock_only=True, limit=20)
    assert "cafe" not in _ids(in_stock)
    assert "caneca" in _ids(in_stock)  # stock not tracked: always available
    assert _ids(await _search(context, tags=["Esporte", "azul"])) == ["tenis"]
    assert _ids(await _search(context, query="café", in_stock_only=True)) == ["caneca"]
    assert len((await _search(context, limit=2)).products) == 2


async def test_out_of_stock_products_say_so(context: ToolContext) -> None:
    (cafe,) = (await _search(context, query="grãos torrados")).products
    assert (cafe.in_stock, cafe.stock_quantity) == (False, 0)


def test_arguments_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValidationError, match="min_price"):
        CatalogSearchInput(min_price=100, max_price=10)
    with pytest.raises(ValidationError, match="extra"):
        CatalogSearchInput.model_validate({"query": "x", "tenant_id": "other"})
    with pytest.raises(ValidationError):
        CatalogSearchInput(limit=500)
    with pytest.raises(ValidationError, match="tag"):
        CatalogSearchInput(tags=[" "])


async def test_meaning_finds_products_the_words_miss(
    pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace
) -> None:
    seeded = await seed_conversation(pg_pool)
    await _catalog(pg_pool, seeded.tenant_id, with_embeddings=True)
    services = replace(tool_services(redis, keys, pg_pool), embed=EMBED)
    context = tool_context(seeded, services)

    output = await _search(context, query="running sneakers")
    assert output.used_meaning
    assert output.text_match == "none"  # no product has these words...
    assert _ids(output) == ["tenis"]  # ...but one means them
    assert output.products[0].score > 0

    # Words and meaning agree: the product is found both ways and ranks first.
    both = await _search(context, query="coffee café")
    assert _ids(both)[0] == "cafe"

    without_embed = tool_context(seeded, tool_services(redis, keys, pg_pool))
    assert _ids(await _search(without_embed, query="running sneakers")) == []


async def test_an_embedder_of_the_wrong_size_is_reported(
    context: ToolContext,
) -> None:
    async def small(texts: object) -> list[list[float]]:
        return [[1.0, 0.0]]

    services = replace(context.services, embed=small)
    with pytest.raises(ToolUnavailable, match="2 dimensions"):
        await _search(replace(context, services=services), query="tênis")


async def test_another_tenants_products_are_never_visible(
    pg_pool: asyncpg.Pool, redis: aioredis.Redis, keys: KeySpace
) -> None:
    acme = await seed_conversation(pg_pool, "acme")
    globex = await seed_conversation(pg_pool, "globex", phone="+5511999990009")
    await _catalog(pg_pool, "acme", with_embeddings=True)
    await insert_product(
        pg_pool,
        "globex",
        "globex-tenis",
        "Tênis Globex de Corrida",
        price="10.00",
        category="calçados",
        tags=["esporte"],
        embedding=EMBED.vector("Tênis Globex de Corrida"),
    )
    services = replace(tool_services(redis, keys, pg_pool), embed=EMBED)
    acme_context = tool_context(acme, services)
    globex_context = tool_context(globex, services)

    for arguments in (
        {"query": "tênis corrida"},
        {"query": "running sneakers"},
        {"category": "calçados"},
        {"tags": ["esporte"], "limit": 20},
        {"max_price": 20},
    ):
        assert "globex-tenis" not in _ids(await _search(acme_context, **arguments))
    assert _ids(await _search(globex_context, query="tênis corrida")) == ["globex-tenis"]
    assert _ids(await _search(globex_context, limit=20)) == ["globex-tenis"]


async def test_without_a_database_the_tool_is_unavailable(
    redis: aioredis.Redis, keys: KeySpace, pg_pool: asyncpg.Pool
) -> None:
    seeded = await seed_conversation(pg_pool)
    context = tool_context(seeded, tool_services(redis, keys, None))
    with pytest.raises(ToolUnavailable, match="Postgres"):
        await _search(context, query="tênis")
