"""Where a turn goes: an agent profile, or a human (see docs/CONVERSATIONS.md, Routing).

In order, first match wins: a handoff keyword (the contact asked for a person); outside
business hours when the tenant hands off then; a route's keywords or patterns; a route's
example phrases by embedding similarity; else the tenant's default profile.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dispatcher.config import ConversationsConfig, Route, TenantConversations
from events.types.routing import Intent
from memory_manager.embedders.base import Embedder


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """An agent profile to answer, or a human; ``reason`` is a short code for the record."""

    to: Literal["agent", "human"]
    profile: str | None
    reason: str
    intent: Intent | None = None


def normalized(text: str) -> str:
    """Lower case, accents removed, runs of spaces collapsed: 'Falar com ATENDENTE' ->
    'falar com atendente'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.split())


def _has_phrase(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(normalized(phrase))}(?!\w)", text) is not None


class Router:
    """Routes a turn's text for a tenant; ``embedder`` enables example phrases."""

    def __init__(self, config: ConversationsConfig, embedder: Embedder | None = None) -> None:
        self._config = config
        self._embedder = embedder
        self._example_vectors: dict[tuple[str, int], list[list[float]]] = {}

    async def route(self, tenant_id: str, text: str, at: datetime) -> RoutingDecision:
        """Decide for ``text`` (the turn's messages joined) arriving at ``at``."""
        tenant = self._config.tenant(tenant_id)
        plain = normalized(text)
        for keyword in tenant.handoff_keywords:
            if _has_phrase(plain, keyword):
                return RoutingDecision("human", None, "asked_for_human")
        hours = tenant.hours()
        if hours is not None and tenant.after_hours == "handoff" and not hours.open_at(at):
            return RoutingDecision("human", None, "after_hours")
        for route in tenant.routes:
            if _matches_words(route, plain, text):
                return _to(route, 1.0)
        matched = await self._by_examples(tenant_id, tenant, text)
        if matched is not None:
            return matched
        return RoutingDecision("agent", tenant.default_profile, "default")

    async def _by_examples(
        self, tenant_id: str, tenant: TenantConversations, text: str
    ) -> RoutingDecision | None:
        with_examples = [(n, r) for n, r in enumerate(tenant.routes) if r.examples]
        if self._embedder is None or not with_examples or not text.strip():
            return None
        (query,) = await self._embedder.embed([text])
        best: tuple[float, Route] | None = None
        for index, route in with_examples:
            vectors = await self._examples_of(tenant_id, index, route)
            score = max(_cosine(query, vector) for vector in vectors)
            if score >= route.min_similarity and (best is None or score > best[0]):
                best = (score, route)
        return None if best is None else _to(best[1], best[0])

    async def _examples_of(self, tenant_id: str, index: int, route: Route) -> list[list[float]]:
        assert self._embedder is not None
        cached = self._example_vectors.get((tenant_id, index))
        if cached is None:
            cached = await self._embedder.embed(list(route.examples))
            self._example_vectors[(tenant_id, index)] = cached
        return cached


def _matches_words(route: Route, plain: str, text: str) -> bool:
    if any(_has_phrase(plain, keyword) for keyword in route.keywords):
        return True
    return any(re.search(pattern, text, re.IGNORECASE) for pattern in route.patterns)


def _to(route: Route, confidence: float) -> RoutingDecision:
    intent = Intent(name=route.profile.replace("-", "_"), confidence=round(min(confidence, 1.0), 3))
    return RoutingDecision("agent", route.profile, f"route:{route.profile}", intent)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
