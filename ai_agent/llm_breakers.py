"""The circuit breakers of one LLM provider: one per model, each shared by every replica."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as aioredis

from libs.breaker import SharedCircuitBreaker
from libs.keys import KeySpace


def provider_label(base_url: str) -> str:
    """``host[:port]/path`` of a provider's URL: no scheme, credentials, query or fragment."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{host}{port}{parts.path.rstrip('/')}"


class ModelBreakers:
    """The shared breaker of each model served at ``base_url``, made on first use.

        A model failing at a provider says nothing about another model there (a vLLM host serves
        several, OpenAI rations them apart), so each has its own, named
        ``llm:<host[:port]/path>:<model>``; replicas that name the same provider and model share
        its state through Redis. Models come from the agent profiles, so the breakers stay few.
    ``trial_timeout_s`` should cover one attempt's timeout, so that a
        slow trial call is not taken for a dead one.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        base_url: str,
        *,
        fail_max: int = 5,
        reset_timeout_s: float = 30.0,
        trial_timeout_s: float | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._provider = provider_label(base_url)
        self._fail_max = fail_max
        self._reset_timeout_s = reset_timeout_s
        self._trial_timeout_s = trial_timeout_s
        self._by_model: dict[str, SharedCircuitBreaker] = {}

    def for_model(self, model: str) -> SharedCircuitBreaker:
        """The breaker guarding calls to ``model``."""
        breaker = self._by_model.get(model)
        if breaker is None:
            breaker = SharedCircuitBreaker(
                self._redis,
                self._keys,
                f"llm:{self._provider}:{model}",
                fail_max=self._fail_max,
                reset_timeout_s=self._reset_timeout_s,
                trial_timeout_s=self._trial_timeout_s,
            )
            self._by_model[model] = breaker
        return breaker
