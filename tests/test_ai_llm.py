"""The OpenAI chat model through the real SDK against the scripted server: answers, tool calls,
retries, refusals, timeouts, metrics and spans."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from openai import AsyncOpenAI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from ai_agent.llm import (
    AssistantMessage,
    ChatMessage,
    ChatRequest,
    LLMRequestRejected,
    LLMUnavailable,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from ai_agent.llm_breakers import ModelBreakers
from ai_agent.llm_retry import CompletionRetryPolicy
from ai_agent.openai_chat import OpenAIChatModel
from libs.keys import KeySpace
from tests.llm_script import (
    Call,
    Delayed,
    Hang,
    Raw,
    SeenRequest,
    Text,
    ToolCalls,
    Usage,
    bad_request,
    overloaded,
    rate_limited,
    server_error,
)
from tests.llm_server import API_KEY, ScriptedOpenAIServer

MODEL = "gpt-4o-mini"
ORDER_STATUS = {
    "type": "function",
    "function": {
        "name": "orders__status",
        "description": "Where an order is.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "integer"}},
            "required": ["order_id"],
        },
    },
}


class NotedSleep:
    """Waits as asked and notes each wait, so tests assert on what was asked, not on time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(delay)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedOpenAIServer]:
    async with ScriptedOpenAIServer() as running:
        yield running


@pytest.fixture
async def client(server: ScriptedOpenAIServer) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=server.base_url, api_key=API_KEY) as sdk:
        yield sdk


@pytest.fixture
def profile() -> str:
    """A profile label of this test's own, so metric samples of other tests do not mix in."""
    return f"profile-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sleep() -> NotedSleep:
    return NotedSleep()


@pytest.fixture
def breakers(redis: aioredis.Redis, keys: KeySpace, server: ScriptedOpenAIServer) -> ModelBreakers:
    return ModelBreakers(redis, keys, server.base_url, fail_max=50, reset_timeout_s=60)


def chat_model(
    client: AsyncOpenAI,
    breakers: ModelBreakers,
    sleep: NotedSleep,
    *,
    max_attempts: int = 3,
    timeout_s: float = 10.0,
    exporter: InMemorySpanExporter | None = None,
) -> OpenAIChatModel:
    retry = CompletionRetryPolicy(
        max_attempts=max_attempts,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
        retry_after_max_s=5,
        sleep=sleep,
    )
    tracer = None
    if exporter is not None:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("tests")
    return OpenAIChatModel(client, breakers, retry=retry, timeout_s=timeout_s, tracer=tracer)


def ask(*messages: ChatMessage, profile: str = "default", **fields: Any) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=messages, profile=profile, **fields)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_text_answer_comes_back_with_its_usage_counted(
    server: ScriptedOpenAIServer,
    client: AsyncOpenAI,
    breakers: ModelBreakers,
    sleep: NotedSleep,
    profile: str,
) -> None:
    server.script(Text("Your order ships tomorrow.", usage=Usage(42, 7)))
    request = ask(
        SystemMessage(content="You are the shop's assistant."),
        UserMessage(content="When does my order ship?"),
        profile=profile,
        tools=(ORDER_STATUS,),
        temperature=0.2,
        max_output_tokens=300,
    )
    reply = await chat_model(client, breakers, sleep).complete(request)
    assert (reply.text, reply.tool_calls, reply.finish_reason, reply.model) == (
        "Your order ships tomorrow.",
        (),
        "stop",
        MODEL,
    )
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (42, 7)
    [seen] = server.requests
    assert seen.messages == [
        {"role": "system", "content": "You are the shop's assistant."},
        {"role": "user", "content": "When does my order ship?"},
    ]
    assert (seen.body["temperature"], seen.body["max_completion_tokens"]) == (0.2, 300)
    assert seen.tool_names == ["orders__status"]
    labels = {"model": MODEL, "profile": profile}
    assert sample("ai_tokens_used_total", **labels, kind="prompt") == 42
    assert sample("ai_tokens_used_total", **labels, kind="completion") == 7
    assert sample("ai_requests_total", **labels, outcome="success") == 1
    assert sample("ai_request_duration_seconds_count", **labels) == 1


async def test_parallel_tool_calls_are_parsed_and_their_results_make_a_valid_history(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, breakers: ModelBreakers, sleep: NotedSleep
) -> None:
    def saw_both_results(seen: SeenRequest) -> Text:
        return Text(" + ".join(seen.contents("tool")))

    server.script(
        ToolCalls(
            Call("orders__status", {"order_id": 7}, id="call_a"),
            Call("orders__status", {"order_id": 8}, id="call_b"),
        ),
        saw_both_results,
    )
    model = chat_model(client, breakers, sleep)
    question = UserMessage(content="Where are orders 7 and 8?")
    reply = await model.complete(ask(question, tools=(ORDER_STATUS,)))
    assert reply.finish_reason == "tool_calls"
    assert [(call.id, call.name, call.arguments) for call in reply.tool_calls] == [
        ("call_a", "orders__status", {"order_id": 7}),
        ("call_b", "orders__status", {"order_id": 8}),
    ]
    results = [
        ToolMessage(tool_call_id=call.id, content=f"order {call.arguments['order_id']} shipped")
        for call in reply.tool_calls
        if call.arguments is not None
    ]
    final = await model.complete(ask(question, reply.as_message(), *results))
    assert final.text == "order 7 shipped + order 8 shipped"
    assert server.requests[1].messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "orders__status", "arguments": '{"order_id":7}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "orders__status", "arguments": '{"order_id":8}'},
            },
        ],
    }


async def test_malformed_tool_arguments_surface_as_a_parse_error_on_that_call(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, breakers: ModelBreakers, sleep: NotedSleep
) -> None:
    server.script(
        ToolCalls(
            Call("orders__status", '{"order_id": 7', id="call_cut"),
            Call("orders__status", "[7]", id="call_list"),
            Call("orders__status", {"order_id": 9}, id="call_fine"),
        )
    )
    reply = await chat_model(client, breakers, sleep).complete(ask(UserMessage(content="hi")))
    cut, listed, fine = reply.tool_calls
    assert (cut.arguments, cut.arguments_json) == (None, '{"order_id": 7')
    assert cut.arguments_error is not None
    assert cut.arguments_error.startswith("the arguments of orders__status are not valid JSON")
    assert listed.arguments_error == (
        "the arguments of orders__status must be a JSON object, not a list"
    )
    assert (fine.arguments, fine.arguments_error) == ({"order_id": 9}, None)


@pytest.mark.parametrize("failure", [server_error(), overloaded()], ids=["500", "503"])
async def test_a_server_error_is_retried_once_then_the_answer_counts_as_one_success(
    server: ScriptedOpenAIServer,
    client: AsyncOpenAI,
    breakers: ModelBreakers,
    sleep: NotedSleep,
    profile: str,
    failure: Any,
) -> None:
    server.script(failure, Text("recovered"))
    model = chat_model(client, breakers, sleep)
    reply = await model.complete(ask(UserMessage(content="hi"), profile=profile))
    assert reply.text == "recovered"
    assert len(server.requests) == 2
    assert len(sleep.delays) == 1
    labels = {"model": MODEL, "profile": profile}
    assert sample("ai_requests_total", **labels, outcome="success") == 1
    assert sample("ai_requests_total", **labels, outcome="unavailable") == 0


async def test_a_rate_limit_waits_as_long_as_retry_after_says_then_succeeds(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, breakers: ModelBreakers, sleep: NotedSleep
) -> None:
    server.script(rate_limited(retry_after_s=1), Text("after the wait"))
    reply = await chat_model(client, breakers, sleep).complete(ask(UserMessage(content="hi")))
    assert reply.text == "after the wait"
    assert len(server.requests) == 2
    assert sleep.delays == [1.0]


async def test_an_exhausted_quota_is_not_retried(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, breakers: ModelBreakers, sleep: NotedSleep
) -> None:
    server.script(rate_limited(retry_after_s=None, quota=True), Text("never sent"))
    with pytest.raises(LLMUnavailable, match="quota is used up") as failed:
        await chat_model(client, breakers, sleep).complete(ask(UserMessage(content="hi")))
    assert (failed.value.status, failed.value.transient) == (429, False)
    assert len(server.requests) == 1


async def test_a_refused_history_is_not_retried_and_carries_openais_message(
    server: ScriptedOpenAIServer,
    client: AsyncOpenAI,
    breakers: ModelBreakers,
    sleep: NotedSleep,
    profile: str,
) -> None:
    server.script(Text("never sent"))
    dangling = AssistantMessage(
        tool_calls=(ToolCall(id="call_lost", name="orders__status", arguments_json="{}"),)
    )
    request = ask(
        UserMessage(content="where is it?"),
        dangling,
        UserMessage(content="hello?"),
        profile=profile,
    )
    with pytest.raises(LLMRequestRejected) as refused:
        await chat_model(client, breakers, sleep).complete(request)
    assert str(refused.value) == (
        f"model '{MODEL}' at {server.base_url.removeprefix('http://')} rejected the request "
        "(HTTP 400 invalid_request_error): An assistant message with 'tool_calls' must be "
        "followed by tool messages responding to each 'tool_call_id'. The following "
        "tool_call_ids did not have response messages: call_lost; sending it again will not help"
    )
    assert (refused.value.status, refused.value.param) == (400, "messages.[2].role")
    assert len(server.requests) == 1
    assert sleep.delays == []
    labels = {"model": MODEL, "profile": profile, "outcome": "rejected"}
    assert sample("ai_requests_total", **labels) == 1


async def test_a_wrong_key_and_an_unknown_model_fail_at_once_naming_what_to_check(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, breakers: ModelBreakers, sleep: NotedSleep
) -> None:
    stranger = AsyncOpenAI(base_url=server.base_url, api_key="sk-wrong")
    async with stranger:
        with pytest.raises(LLMRequestRejected, match="check OPENAI_API_KEY") as refused:
            await chat_model(stranger, breakers, sleep).complete(ask(UserMessage(content="hi")))
    assert refused.value.status == 401
    server.script(bad_request("The model `gpt-9` does not exist.", code="model_not_found"))
    with pytest.raises(LLMRequestRejected, match="The model `gpt-9` does not exist") as unknown:
        await chat_model(client, breakers, sleep).complete(ask(UserMessage(content="hi")))
    assert unknown.value.code == "model_not_found"
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "slow", [Delayed(30, Text("too late")), Hang()], ids=["delayed", "hanging"]
)
async def test_an_answer_slower_than_the_timeout_is_retried_then_unavailable(
    server: ScriptedOpenAIServer,
    client: AsyncOpenAI,
    breakers: ModelBreakers,
    sleep: NotedSleep,
    profile: str,
    slow: Delayed | Hang,
) -> None:
    server.script(slow, slow)
    model = chat_model(client, breakers, sleep, max_attempts=2, timeout_s=0.3)
    with pytest.raises(LLMUnavailable) as failed:
        await model.complete(ask(UserMessage(content="hi"), profile=profile))
    assert str(failed.value).startswith(
        f"model '{MODEL}' at {server.base_url.removeprefix('http://')} did not answer within 0.3s"
    )
    assert re.search(r"; gave up after 2 attempts in \d+\.\ds$", str(failed.value))
    assert failed.value.attempts == 2
    assert len(server.requests) == 2
    labels = {"model": MODEL, "profile": profile, "outcome": "unavailable"}
    assert sample("ai_requests_total", **labels) == 1


async def test_what_compatible_servers_leave_out_is_tolerated_and_nonsense_refused(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, breakers: ModelBreakers, sleep: NotedSleep
) -> None:
    sparse = {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "llama-3.1-8b-instruct.Q4_K_M.gguf",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": None}
        ],
    }
    server.script(Raw(sparse), Raw({**sparse, "choices": []}), Text("never sent"))
    model = chat_model(client, breakers, sleep)
    reply = await model.complete(ask(UserMessage(content="hi")))
    assert (reply.text, reply.finish_reason, reply.model) == (
        "hi",
        "unknown",
        "llama-3.1-8b-instruct.Q4_K_M.gguf",
    )
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (0, 0)
    with pytest.raises(LLMUnavailable, match="answered without any choice") as failed:
        await model.complete(ask(UserMessage(content="hi")))
    assert failed.value.transient is False
    assert len(server.requests) == 2


async def test_a_provider_that_cannot_be_reached_is_unavailable(
    breakers: ModelBreakers, sleep: NotedSleep
) -> None:
    async with ScriptedOpenAIServer() as gone:
        base_url = gone.base_url
    async with AsyncOpenAI(base_url=base_url, api_key=API_KEY) as client:
        with pytest.raises(LLMUnavailable, match="could not be reached") as failed:
            await chat_model(client, breakers, sleep, max_attempts=2).complete(
                ask(UserMessage(content="hi"))
            )
    assert failed.value.attempts == 2


async def test_a_traced_call_is_one_client_span_with_the_gen_ai_attributes(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, breakers: ModelBreakers, sleep: NotedSleep
) -> None:
    exporter = InMemorySpanExporter()
    server.script(server_error(), Text("fine", usage=Usage(11, 3)), bad_request("no"))
    model = chat_model(client, breakers, sleep, exporter=exporter)
    await model.complete(ask(UserMessage(content="hi"), temperature=0.5))
    with pytest.raises(LLMRequestRejected):
        await model.complete(ask(UserMessage(content="hi")))
    succeeded, refused = exporter.get_finished_spans()
    assert (succeeded.name, succeeded.kind) == (f"chat {MODEL}", SpanKind.CLIENT)
    assert dict(succeeded.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.temperature": 0.5,
        "server.address": "127.0.0.1",
        "server.port": int(server.base_url.split(":")[2].split("/")[0]),
        "atende.agent.profile": "default",
        "gen_ai.response.model": MODEL,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 3,
    }
    [retried] = succeeded.events
    assert retried.name == "attempt failed"
    assert dict(retried.attributes or {}) == {
        "error.type": "LLMUnavailable",
        "http.response.status_code": 500,
    }
    assert refused.status.status_code is StatusCode.ERROR
    assert (refused.attributes or {})["error.type"] == "LLMRequestRejected"


def test_request_history_round_trips_through_json() -> None:
    call = ToolCall(id="call_1", name="orders__status", arguments_json='{"order_id": 1}')
    request = ask(
        SystemMessage(content="be brief"),
        UserMessage(content="where?"),
        AssistantMessage(tool_calls=(call,)),
        ToolMessage(tool_call_id="call_1", content="shipped"),
    )
    again = ChatRequest.model_validate(json.loads(request.model_dump_json()))
    assert again == request
    assert again.messages[2].tool_calls[0].arguments == {"order_id": 1}  # type: ignore[union-attr]
