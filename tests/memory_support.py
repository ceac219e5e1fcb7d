"""Memory tests' helpers: a local OpenAI-compatible embeddings server and a small knowledge base."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiohttp import web

from memory_manager.embedders.deterministic import HashedNgramEmbedder
from memory_manager.knowledge import KnowledgeBase
from tests.tool_support import SeededConversation, seed_conversation


class EmbeddingsServer:
    """Speaks ``POST /v1/embeddings`` like OpenAI; records each request's inputs.

    Vectors come from the deterministic embedder (so answers are checkable) and are listed in
    shuffled order with their ``index``, as the API allows. ``fail_with`` makes every request
    answer that HTTP status with OpenAI's error shape; ``dimension`` sets the width returned.
    """

    def __init__(self, *, dimension: int = 384, api_key: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.models: list[str] = []
        self.fail_with: int | None = None
        self.api_key = api_key
        self._embedder = HashedNgramEmbedder(dimension)
        self._shuffle = random.Random(7)

    async def handle(self, request: web.Request) -> web.Response:
        """One embeddings request."""
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_api_key", "Incorrect API key provided")
        if self.fail_with is not None:
            return _error(self.fail_with, "server_error", "the embedding model is overloaded")
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.batches.append(list(inputs))
        self.models.append(body["model"])
        data: list[dict[str, Any]] = [
            {"object": "embedding", "index": index, "embedding": self._embedder.embed_one(text)}
            for index, text in enumerate(inputs)
        ]
        self._shuffle.shuffle(data)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
            }
        )


def _error(status: int, code: str, message: str) -> web.Response:
    payload = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return web.json_response(payload, status=status)


@asynccontextmanager
async def embeddings_server(server: EmbeddingsServer) -> AsyncIterator[str]:
    """Serve ``server`` on a free local port; yield its OpenAI ``base_url`` (``…/v1``)."""
    app = web.Application()
    app.router.add_post("/v1/embeddings", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


# A small support knowledge base: each document answers distinct questions.
KB_DOCUMENTS: dict[str, str] = {
    "shipping.md": """# Shipping

## Delivery times
Orders inside Brazil are delivered in 3 to 5 business days. Orders shipped abroad take
10 to 15 business days, depending on customs.

## Shipping costs
Shipping is free for orders above R$ 200. Below that, the shipping cost is calculated at
checkout from your postal code.
""",
    "returns.md": """# Returns and refunds

## Refund policy
You can return any product within 30 days of delivery and get a full refund of the money
you paid. The refund goes back to the original payment method within 7 days.

## Damaged products
If a product arrives damaged, send us a photo and we replace it at no cost.
""",
    "account.md": """# Account

## Password reset
To reset a forgotten password, open the login page, click "Forgot password" and follow the
link we email you. The link expires after one hour.

## Opening hours
Our support team answers on weekdays from 9am to 6pm, and on Saturdays from 9am to 1pm.
""",
    "payments.md": """# Payments

## Payment methods
We accept credit cards, Pix and bank slips (boleto). Credit card payments can be split in
up to 10 installments without interest.
""",
}

# Paraphrased questions and the document whose chunk must come first.
PARAPHRASES: list[tuple[str, str]] = [
    ("How many days until my order is delivered?", "shipping.md"),
    ("Can I send a product back and get my money refunded?", "returns.md"),
    ("I forgot my password, how do I reset it?", "account.md"),
    ("Which payment methods do you accept? Can I pay in installments?", "payments.md"),
    ("When is your support team open?", "account.md"),
    ("Do I pay for shipping on a big order?", "shipping.md"),
]


async def ingest_documents(
    knowledge: KnowledgeBase, tenant_id: str, documents: dict[str, str] | None = None
) -> None:
    """Ingest ``documents`` (default: the sample knowledge base) for ``tenant_id``."""
    for key, text in (documents or KB_DOCUMENTS).items():
        await knowledge.ingest(tenant_id, key, text)


async def two_tenants(pool: asyncpg.Pool) -> tuple[SeededConversation, SeededConversation]:
    """Two tenants, each with a contact, a conversation and an open turn."""
    first = await seed_conversation(pool, "acme")
    second = await seed_conversation(pool, "globex")
    return first, second


def keys_of(hits: Sequence[Any]) -> list[str]:
    """The document keys of search hits, in order."""
    return [hit.document_key for hit in hits]
