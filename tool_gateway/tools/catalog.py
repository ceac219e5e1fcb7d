"""``catalog.search``: the tenant's products by words, filters and, when available, meaning.

Text search ignores case and accents and knows Portuguese, Spanish and English stems
(migration 0003). Every word must match; when no product has them all, any word may, and the
answer says which happened. With an embedding provider and embedded products, products close
in meaning join the hits and the two scores are blended.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from libs.postgres import PgConnection
from tool_gateway.tool import Tool, ToolContext, ToolUnavailable
from tool_gateway.tools._business_db import postgres_pool

EMBEDDING_DIMENSIONS = 384
_MAX_WORDS = 12
_TEXT_CANDIDATES = 200
_VECTOR_CANDIDATES = 50
# Cosine similarity below which a product is not "close in meaning" at all.
_MIN_SIMILARITY = 0.3
_TEXT_WEIGHT = 0.5
_VECTOR_WEIGHT = 0.5
_DESCRIPTION_CHARS = 300

TextMatch = Literal["all_words", "any_word", "none"]


class CatalogSearchInput(BaseModel):
    """Find products in the store's catalog by what the customer asks for, with filters."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    query: str = Field(
        default="",
        max_length=200,
        description="What the customer is looking for, in their words and language, e.g."
        " 'tênis de corrida azul'. Leave empty to list products by the filters alone.",
    )
    category: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Only products of this category (exact name, any case), e.g. 'calçados'.",
    )
    min_price: float | None = Field(
        default=None, ge=0, description="Lowest price, in the catalog's currency units."
    )
    max_price: float | None = Field(
        default=None, ge=0, description="Highest price, in the catalog's currency units."
    )
    in_stock_only: bool = Field(
        default=False, description="True to leave out products that are out of stock."
    )
    tags: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Only products carrying every one of these tags, e.g. ['vegan'].",
    )
    limit: int = Field(default=5, ge=1, le=20, description="How many products to return.")

    @field_validator("tags")
    @classmethod
    def _normalized_tags(cls, tags: list[str]) -> list[str]:
        cleaned = [tag.strip().lower() for tag in tags]
        if any(not tag or len(tag) > 64 for tag in cleaned):
            raise ValueError("each tag must have 1 to 64 characters")
        return cleaned

    @model_validator(mode="after")
    def _price_range_is_ordered(self) -> Self:
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            raise ValueError(
                f"min_price {self.min_price} is above max_price {self.max_price}; swap them"
            )
        return self


class ProductHit(BaseModel):
    """One product that matches, with what a customer needs to decide."""

    product_id: str
    sku: str | None
    name: str
    description: str = Field(description="The start of the description.")
    category: str | None
    tags: list[str]
    price: Decimal
    currency: str
    in_stock: bool
    stock_quantity: int | None = Field(description="Units in stock; null when not tracked.")
    url: str | None
    score: float = Field(description="Relevance, higher is better (0 when listing by filters).")


class CatalogSearchOutput(BaseModel):
    """The best matches, best first, and how the words matched."""

    products: list[ProductHit]
    text_match: TextMatch = Field(
        description="'all_words': every word matched; 'any_word': no product had them all, so"
        " these have some; 'none': no product matched by words (filters only, or found by"
        " meaning only)."
    )
    used_meaning: bool = Field(description="Whether products close in meaning were included.")


class _Filters:
    """The WHERE conditions of the input's filters, as SQL with numbered parameters."""

    def __init__(self, tenant_id: str, data: CatalogSearchInput) -> None:
        self.params: list[Any] = [tenant_id]
        conditions = ["p.tenant_id = $1", "p.active"]
        if data.category is not None:
            conditions.append(f"lower(p.category) = lower({self._param(data.category)})")
        if data.min_price is not None:
            conditions.append(f"p.price >= {self._param(Decimal(str(data.min_price)))}")
        if data.max_price is not None:
            conditions.append(f"p.price <= {self._param(Decimal(str(data.max_price)))}")
        if data.in_stock_only:
            conditions.append("(p.stock_quantity IS NULL OR p.stock_quantity > 0)")
        if data.tags:
            conditions.append(f"p.tags @> {self._param(data.tags)}::text[]")
        self.sql = " AND ".join(conditions)

    def _param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def then(self, *values: Any) -> list[str]:
        """Placeholders for more parameters after the filters'."""
        return [self._param(value) for value in values]


_PRODUCT_COLUMNS = (
    f"p.product_id, p.sku, p.name, left(p.description, {_DESCRIPTION_CHARS}) AS description,"
    " p.category, p.tags, p.price, p.currency, p.stock_quantity, p.url"
)

# One tsquery per word: its unaccented form, or its stem in any supported language. Words
# that are stop words in some language (de, para, the, con...) carry no meaning and are dropped.
_COMPILE_QUERY = """
WITH terms AS (
    SELECT plainto_tsquery('atende_simple', word) || plainto_tsquery('atende_portuguese', word)
        || plainto_tsquery('atende_spanish', word) || plainto_tsquery('atende_english', word)
        AS term
    FROM unnest($1::text[]) AS word
    WHERE numnode(plainto_tsquery('atende_simple', word)) > 0
        AND numnode(plainto_tsquery('atende_portuguese', word)) > 0
        AND numnode(plainto_tsquery('atende_spanish', word)) > 0
        AND numnode(plainto_tsquery('atende_english', word)) > 0
)
SELECT atende_tsquery_all(term)::text AS all_words, atende_tsquery_any(term)::text AS any_word
FROM terms
"""


async def search_catalog(context: ToolContext, data: CatalogSearchInput) -> CatalogSearchOutput:
    """Run ``catalog.search`` for the caller's tenant."""
    pool = postgres_pool(context)
    vector = await _query_embedding(context, data.query)
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        if vector is not None:
            # pgvector 0.8+: scan the HNSW graph on until the tenant's filters are satisfied.
            await connection.execute(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"
            )
        all_words, any_word = await _compile_query(connection, data.query)
        if all_words is None and vector is None:
            rows = await _list_by_filters(connection, context.tenant_id, data)
            return _output(rows, "none", used_meaning=False)
        rows = await _ranked(connection, context.tenant_id, data, all_words, vector)
        text_match: TextMatch = "none" if all_words is None else "all_words"
        if any_word is not None and any_word != all_words and not _any_text_hit(rows):
            rows = await _ranked(connection, context.tenant_id, data, any_word, vector)
            text_match = "any_word"
    if not _any_text_hit(rows):
        text_match = "none"
    return _output(rows, text_match, used_meaning=vector is not None)


async def _query_embedding(context: ToolContext, query: str) -> list[float] | None:
    embed = context.services.embed
    if embed is None or not query:
        return None
    (vector,) = await embed([query])
    if len(vector) != EMBEDDING_DIMENSIONS:
        raise ToolUnavailable(
            f"the embedding provider returned {len(vector)} dimensions, but product embeddings"
            f" have {EMBEDDING_DIMENSIONS}; configure a {EMBEDDING_DIMENSIONS}-dimension model"
        )
    return vector


async def _compile_query(connection: PgConnection, query: str) -> tuple[str | None, str | None]:
    words = query.split()[:_MAX_WORDS]
    if not words:
        return None, None
    row = await connection.fetchrow(_COMPILE_QUERY, words)
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return row["all_words"], row["any_word"]


async def _list_by_filters(
    connection: PgConnection, tenant_id: str, data: CatalogSearchInput
) -> list[Any]:
    filters = _Filters(tenant_id, data)
    (limit,) = filters.then(data.limit)
    sql = f"""
    SELECT {_PRODUCT_COLUMNS}, 0.0::float8 AS score, NULL::float8 AS text_rank
    FROM products p WHERE {filters.sql} ORDER BY p.name, p.product_id LIMIT {limit}
    """  # noqa: S608 - only constant fragments and $n placeholders are interpolated
    return await connection.fetch(sql, *filters.params)


async def _ranked(
    connection: PgConnection,
    tenant_id: str,
    data: CatalogSearchInput,
    tsquery: str | None,
    vector: list[float] | None,
) -> list[Any]:
    filters = _Filters(tenant_id, data)
    query, embedding, min_similarity, limit = filters.then(
        tsquery, vector, _MIN_SIMILARITY, data.limit
    )
    sql = f"""
    WITH text_hits AS (
        SELECT p.product_id, ts_rank_cd(p.search_vector, {query}::tsquery, 32) AS text_rank
        FROM products p
        WHERE {filters.sql} AND {query}::tsquery IS NOT NULL
            AND p.search_vector @@ {query}::tsquery
        ORDER BY text_rank DESC LIMIT {_TEXT_CANDIDATES}
    ), vector_hits AS (
        SELECT p.product_id, 1 - (p.embedding <=> {embedding}::vector) AS similarity
        FROM products p
        WHERE {filters.sql} AND {embedding}::vector IS NOT NULL AND p.embedding IS NOT NULL
        ORDER BY p.embedding <=> {embedding}::vector LIMIT {_VECTOR_CANDIDATES}
    ), candidates AS (
        SELECT product_id, max(text_rank) AS text_rank, max(similarity) AS similarity
        FROM (
            SELECT product_id, text_rank, NULL::float8 AS similarity FROM text_hits
            UNION ALL
            SELECT product_id, NULL, similarity FROM vector_hits
            WHERE similarity >= {min_similarity}
        ) AS hits
        GROUP BY product_id
    )
    SELECT {_PRODUCT_COLUMNS}, c.text_rank,
        CASE WHEN {embedding}::vector IS NULL THEN c.text_rank
            ELSE {_TEXT_WEIGHT} * coalesce(c.text_rank, 0)
                + {_VECTOR_WEIGHT} * coalesce(c.similarity, 0)
        END AS score
    FROM candidates c
    JOIN products p ON p.tenant_id = $1 AND p.product_id = c.product_id
    ORDER BY score DESC, p.name, p.product_id
    LIMIT {limit}
    """  # noqa: S608 - only constant fragments and $n placeholders are interpolated
    return await connection.fetch(sql, *filters.params)


def _any_text_hit(rows: list[Any]) -> bool:
    return any(row["text_rank"] is not None for row in rows)


def _output(rows: list[Any], text_match: TextMatch, *, used_meaning: bool) -> CatalogSearchOutput:
    products = [
        ProductHit(
            product_id=row["product_id"],
            sku=row["sku"],
            name=row["name"],
            description=row["description"],
            category=row["category"],
            tags=list(row["tags"]),
            price=row["price"],
            currency=row["currency"],
            in_stock=row["stock_quantity"] is None or row["stock_quantity"] > 0,
            stock_quantity=row["stock_quantity"],
            url=row["url"],
            score=round(float(row["score"]), 4),
        )
        for row in rows
    ]
    return CatalogSearchOutput(products=products, text_match=text_match, used_meaning=used_meaning)


SEARCH = Tool(
    name="catalog.search",
    description=(
        "Search the store's product catalog by the customer's words (any language; accents and"
        " plurals do not matter) and filters: category, price range, in stock, tags. Returns"
        " the best matches first with price, currency and stock."
    ),
    input_model=CatalogSearchInput,
    output_model=CatalogSearchOutput,
    run=search_catalog,
    writes=False,
    timeout_s=5.0,
)
