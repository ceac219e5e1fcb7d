"""Building the OpenAI-compatible chat model from the settings: client, breakers, retries.

The environment is read once, into ``Settings`` (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``);
the key and URL are always handed to the SDK explicitly, so it never picks up another value
behind the settings' back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self

import redis.asyncio as aioredis
from openai import AsyncOpenAI
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ai_agent.llm_breakers import ModelBreakers
from ai_agent.llm_retry import CompletionRetryPolicy
from ai_agent.openai_chat import MaxTokensField, OpenAIChatModel
from libs.errors import ConfigurationError
from libs.keys import KeySpace
from libs.settings import Settings

OPENAI_BASE_URL = "https://api.openai.com/v1"
# The SDK refuses to start without a key; local servers (vLLM, Ollama) ignore it.
_PLACEHOLDER_KEY = "unused"


class OpenAIChatConfig(BaseModel):
    """Timeouts, retries and breaker thresholds of the chat model. Units are in the names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(default=30.0, gt=0, le=600, description="Per attempt.")
    max_attempts: int = Field(default=4, ge=1, le=10)
    max_total_s: float = Field(default=90.0, gt=0, le=900, description="Whole call, waits too.")
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=8.0, gt=0)
    retry_after_max_s: float = Field(
        default=20.0, gt=0, description="The longest Retry-After honoured."
    )
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_timeout_s: float = Field(default=30.0, gt=0)
    max_tokens_field: MaxTokensField = "max_completion_tokens"

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        if self.backoff_initial_s > self.backoff_max_s:
            raise ValueError(
                f"backoff_initial_s ({self.backoff_initial_s}) must not exceed "
                f"backoff_max_s ({self.backoff_max_s})"
            )
        if self.max_total_s < self.timeout_s:
            raise ValueError(
                f"max_total_s ({self.max_total_s}) must be at least timeout_s ({self.timeout_s})"
            )
        return self

    def retry_policy(self) -> CompletionRetryPolicy:
        """The retry policy these numbers describe."""
        return CompletionRetryPolicy(
            max_attempts=self.max_attempts,
            max_total_s=self.max_total_s,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
            retry_after_max_s=self.retry_after_max_s,
        )


def openai_client(settings: Settings, *, timeout_s: float) -> AsyncOpenAI:
    """A client for the configured provider; the caller closes it.

    Raises ``ConfigurationError`` when neither ``OPENAI_API_KEY`` nor ``OPENAI_BASE_URL`` is
    set: there is no provider to call (run the offline model instead).
    """
    key = settings.openai_api_key
    if key is None and settings.openai_base_url is None:
        raise ConfigurationError(
            "no LLM provider is configured: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL "
            "(an OpenAI-compatible server such as vLLM or Ollama), or run the offline model"
        )
    return AsyncOpenAI(
        api_key=key.get_secret_value() if key is not None else _PLACEHOLDER_KEY,
        base_url=settings.openai_base_url or OPENAI_BASE_URL,
        timeout=timeout_s,
        max_retries=0,
    )


@asynccontextmanager
async def open_openai_chat_model(
    settings: Settings,
    redis: aioredis.Redis,
    keys: KeySpace,
    config: OpenAIChatConfig | None = None,
    *,
    tracer: trace.Tracer | None = None,
) -> AsyncIterator[OpenAIChatModel]:
    """The chat model of the configured provider; its HTTP connections close on exit."""
    config = config if config is not None else OpenAIChatConfig()
    client = openai_client(settings, timeout_s=config.timeout_s)
    try:
        breakers = ModelBreakers(
            redis,
            keys,
            str(client.base_url),
            fail_max=config.breaker_fail_max,
            reset_timeout_s=config.breaker_reset_timeout_s,
            # A trial is one attempt: it must not be taken for dead before its timeout.
            trial_timeout_s=max(config.breaker_reset_timeout_s, config.timeout_s),
        )
        yield OpenAIChatModel(
            client,
            breakers,
            retry=config.retry_policy(),
            timeout_s=config.timeout_s,
            tracer=tracer,
            max_tokens_field=config.max_tokens_field,
        )
    finally:
        await client.close()
