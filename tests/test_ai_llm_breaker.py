"""The chat model's shared circuit breaker, on a real Redis: what trips it, what it refuses,
and the one trial call that closes it again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from openai import AsyncOpenAI

from ai_agent.llm import (
    ChatRequest,
    LLMCircuitOpen,
    LLMRequestRejected,
    LLMUnavailable,
    UserMessage,
)
from ai_agent.llm_breakers import ModelBreakers, provider_label
from ai_agent.llm_retry import CompletionRetryPolicy
from ai_agent.openai_chat import OpenAIChatModel
from libs.keys import KeySpace
from tests.llm_script import Text, bad_request, rate_limited, server_error
from tests.llm_server import API_KEY, ScriptedOpenAIServer

MODEL = "gpt-4o-mini"
FAIL_MAX = 3
RESET_TIMEOUT_S = 0.5
HELLO = ChatRequest(model=MODEL, messages=(UserMessage(content="hello"),))


async def no_wait(delay: float) -> None:
    """Retries of these tests do not wait: what they test is what reaches the server."""


@pytest.fixture
async def server() -> AsyncIterator[ScriptedOpenAIServer]:
    async with ScriptedOpenAIServer() as running:
        yield running


@pytest.fixture
async def client(server: ScriptedOpenAIServer) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=server.base_url, api_key=API_KEY) as sdk:
        yield sdk


def replica(
    client: AsyncOpenAI,
    redis: aioredis.Redis,
    keys: KeySpace,
    *,
    max_attempts: int = 1,
    reset_timeout_s: float = 60,
) -> OpenAIChatModel:
    """One replica's chat model: its own breakers object, the state shared through Redis."""
    breakers = ModelBreakers(
        redis, keys, str(client.base_url), fail_max=FAIL_MAX, reset_timeout_s=reset_timeout_s
    )
    retry = CompletionRetryPolicy(max_attempts=max_attempts, sleep=no_wait)
    return OpenAIChatModel(client, breakers, retry=retry, timeout_s=5)


async def test_repeated_failures_open_the_breaker_then_calls_fail_without_a_request(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, redis: aioredis.Redis, keys: KeySpace
) -> None:
    model = replica(client, redis, keys, reset_timeout_s=RESET_TIMEOUT_S)
    server.script(*[server_error()] * FAIL_MAX)
    for _ in range(FAIL_MAX):
        with pytest.raises(LLMUnavailable, match="failed with HTTP 500"):
            await model.complete(HELLO)
    label = provider_label(server.base_url)
    with pytest.raises(LLMCircuitOpen) as refused:
        await model.complete(HELLO)
    assert str(refused.value).startswith(
        f"model '{MODEL}' at {label} was not called: circuit breaker 'llm:{label}:{MODEL}' is "
        "open after repeated failures"
    )
    # Another replica reads the shared state and refuses too.
    with pytest.raises(LLMCircuitOpen):
        await replica(client, redis, keys).complete(HELLO)
    assert len(server.requests) == FAIL_MAX

    await asyncio.sleep(RESET_TIMEOUT_S)
    server.script(Text("back"))
    assert (await model.complete(HELLO)).text == "back"
    assert len(server.requests) == FAIL_MAX + 1
    assert await shared_state(redis, keys, server) == "closed"


async def test_an_open_breaker_ends_the_retries_of_a_call(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, redis: aioredis.Redis, keys: KeySpace
) -> None:
    server.script(*[server_error()] * 10)
    with pytest.raises(LLMUnavailable, match=r"circuit breaker .* is open") as failed:
        await replica(client, redis, keys, max_attempts=10).complete(HELLO)
    assert failed.value.attempts == FAIL_MAX + 1
    assert len(server.requests) == FAIL_MAX


async def test_refusals_and_rate_limits_leave_the_breaker_closed(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, redis: aioredis.Redis, keys: KeySpace
) -> None:
    model = replica(client, redis, keys)
    server.script(*[bad_request("bad")] * (FAIL_MAX + 1))
    for _ in range(FAIL_MAX + 1):
        with pytest.raises(LLMRequestRejected):
            await model.complete(HELLO)
    server.script(*[rate_limited(retry_after_s=None)] * (FAIL_MAX + 1))
    for _ in range(FAIL_MAX + 1):
        with pytest.raises(LLMUnavailable, match="is rate limiting us"):
            await model.complete(HELLO)
    server.script(Text("still here"))
    assert (await model.complete(HELLO)).text == "still here"
    assert await shared_state(redis, keys, server) == "closed"


async def test_each_model_has_its_own_breaker(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, redis: aioredis.Redis, keys: KeySpace
) -> None:
    model = replica(client, redis, keys)
    server.script(*[server_error()] * FAIL_MAX, Text("the other model answers"))
    for _ in range(FAIL_MAX):
        with pytest.raises(LLMUnavailable):
            await model.complete(HELLO)
    other = HELLO.model_copy(update={"model": "gpt-4o"})
    assert (await model.complete(other)).text == "the other model answers"


async def shared_state(redis: aioredis.Redis, keys: KeySpace, server: ScriptedOpenAIServer) -> str:
    """The breaker's state as a replica that never called anything sees it."""
    breaker = ModelBreakers(redis, keys, server.base_url).for_model(MODEL)
    await breaker.sync()
    return breaker.state
