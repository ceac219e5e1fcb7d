"""The scripted OpenAI server, through the real SDK: scripts run in order, histories are checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from tests.llm_script import Call, SeenRequest, Text, ToolCalls, rate_limited
from tests.llm_server import API_KEY, ScriptedOpenAIServer

MODEL = "gpt-4o-mini"
LOOKUP = {
    "type": "function",
    "function": {
        "name": "orders__status",
        "description": "Where an order is.",
        "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
    },
}


@pytest.fixture
async def server() -> AsyncIterator[ScriptedOpenAIServer]:
    async with ScriptedOpenAIServer() as running:
        yield running


@pytest.fixture
async def client(server: ScriptedOpenAIServer) -> AsyncIterator[AsyncOpenAI]:
    # No SDK retries: each call is one request, so the server's record is exact.
    sdk = AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=10)
    async with sdk:
        yield sdk


async def ask(
    client: AsyncOpenAI,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    stream: bool = False,
) -> ChatCompletion:
    """A chat request of raw JSON: the tests send histories the SDK's types would not allow."""
    return await client.chat.completions.create(
        model=MODEL,
        messages=cast(Any, messages),
        tools=cast(Any, tools) if tools is not None else openai.omit,
        # Sent as a raw field: the SDK would otherwise expect a stream back.
        extra_body={"stream": True} if stream else None,
    )


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def asked_order(call_ids: tuple[str, ...]) -> dict[str, Any]:
    calls = [
        {"id": c, "type": "function", "function": {"name": "orders__status", "arguments": "{}"}}
        for c in call_ids
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def answered(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": '{"status": "shipped"}'}


async def test_steps_answer_requests_in_order_and_every_request_is_recorded(
    server: ScriptedOpenAIServer, client: AsyncOpenAI
) -> None:
    server.script(
        Text("first"),
        ToolCalls(Call("orders__status", {"id": 7}), Call("orders__status", {"id": 8})),
        Text("third"),
    )
    answers = [await ask(client, [user(f"message {n}")], [LOOKUP]) for n in range(3)]
    assert answers[0].choices[0].message.content == "first"
    calls = answers[1].choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        ("call_2_0", "orders__status", '{"id":7}'),
        ("call_2_1", "orders__status", '{"id":8}'),
    ]
    assert answers[1].choices[0].finish_reason == "tool_calls"
    assert answers[2].choices[0].message.content == "third"
    assert all(answer.usage is not None and answer.usage.total_tokens > 0 for answer in answers)
    assert [seen.contents("user") for seen in server.requests] == [
        ["message 0"],
        ["message 1"],
        ["message 2"],
    ]
    assert server.requests[0].tool_names == ["orders__status"]


async def test_a_step_can_answer_from_what_the_model_was_sent(
    server: ScriptedOpenAIServer, client: AsyncOpenAI
) -> None:
    def echo(seen: SeenRequest) -> Text:
        return Text(" | ".join(seen.contents("user")))

    server.script(echo)
    answer = await ask(client, [user("hi"), {"role": "assistant", "content": "hello"}, user("bye")])
    assert answer.choices[0].message.content == "hi | bye"


async def test_a_dangling_tool_call_is_refused_as_openai_does_and_keeps_the_step(
    server: ScriptedOpenAIServer, client: AsyncOpenAI
) -> None:
    server.script(Text("answered"))
    history = [user("where is my order?"), asked_order(("call_a", "call_b")), answered("call_a")]
    with pytest.raises(openai.BadRequestError) as refused:
        await ask(client, [*history, user("hello?")])
    assert refused.value.message == (
        "Error code: 400 - An assistant message with 'tool_calls' must be followed by tool "
        "messages responding to each 'tool_call_id'. The following tool_call_ids did not have "
        "response messages: call_b"
    )
    assert refused.value.type == "invalid_request_error"
    assert refused.value.param == "messages.[3].role"
    assert server.steps_left == 1
    answer = await ask(client, [*history, answered("call_b"), user("hello?")])
    assert answer.choices[0].message.content == "answered"


@pytest.mark.parametrize(
    "history",
    [
        pytest.param([user("hi"), answered("call_x")], id="no call at all"),
        pytest.param(
            [user("hi"), asked_order(("call_a",)), answered("call_a"), answered("call_a")],
            id="answered twice",
        ),
    ],
)
async def test_a_tool_message_without_its_call_is_refused(
    server: ScriptedOpenAIServer, client: AsyncOpenAI, history: list[dict[str, Any]]
) -> None:
    with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding message"):
        await ask(client, history)


async def test_malformed_tools_and_roles_are_refused(
    server: ScriptedOpenAIServer, client: AsyncOpenAI
) -> None:
    dotted = {"type": "function", "function": {"name": "orders.status", "parameters": {}}}
    with pytest.raises(openai.BadRequestError, match="does not match pattern") as refused:
        await ask(client, [user("hi")], [dotted])
    assert refused.value.param == "tools[0].function.name"
    listed = {"type": "function", "function": {"name": "x", "parameters": {"type": "array"}}}
    with pytest.raises(openai.BadRequestError, match="must be a JSON Schema of 'type"):
        await ask(client, [user("hi")], [listed])
    with pytest.raises(openai.BadRequestError, match="Invalid value: 'robot'"):
        await ask(client, [{"role": "robot", "content": "beep"}])


async def test_streaming_an_empty_script_and_a_wrong_key_get_clear_errors(
    server: ScriptedOpenAIServer, client: AsyncOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError, match="does not stream"):
        await ask(client, [user("hi")], stream=True)
    with pytest.raises(openai.InternalServerError, match="script ran out"):
        await ask(client, [user("hi")])
    stranger = client.with_options(api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
        await ask(stranger, [user("hi")])


async def test_failures_carry_openai_bodies_and_headers(
    server: ScriptedOpenAIServer, client: AsyncOpenAI
) -> None:
    server.script(rate_limited(2))
    with pytest.raises(openai.RateLimitError) as limited:
        await ask(client, [user("hi")])
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "2"


async def test_voice_notes_are_transcribed_and_models_listed(
    server: ScriptedOpenAIServer, client: AsyncOpenAI
) -> None:
    server.transcribe("quero remarcar a consulta")
    transcript = await client.audio.transcriptions.create(
        model="whisper-1", file=("note.ogg", b"OggS-voice-note", "audio/ogg")
    )
    assert transcript.text == "quero remarcar a consulta"
    [upload] = server.uploads
    assert (upload.filename, upload.data, upload.fields["model"]) == (
        "note.ogg",
        b"OggS-voice-note",
        "whisper-1",
    )
    models = await client.models.list()
    assert [model.id async for model in models] == ["gpt-4o-mini", "whisper-1"]
