"""The transcript in Redis: interrupted runs fold into a valid history, results are kept once."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis

from ai_agent.llm import ChatReply, ToolCall, Usage, UserMessage
from ai_agent.transcript import (
    SUPERSEDED_RESULT,
    StaleResult,
    TranscriptEntry,
    TranscriptStore,
    TurnRun,
)
from libs.keys import KeySpace

TENANT, CONVERSATION = "acme", "wa:5511"


def _run(turn_id: str, token: int) -> TurnRun:
    return TurnRun(turn_id=turn_id, token=token, profile="support", channel_id="acme-wa")


def _asks_for(*call_ids: str) -> ChatReply:
    calls = tuple(
        ToolCall(id=call_id, name="orders__status", arguments_json="{}") for call_id in call_ids
    )
    return ChatReply(
        tool_calls=calls, finish_reason="tool_calls", model="m", usage=Usage(prompt_tokens=3)
    )


def _contents(entries: Sequence[TranscriptEntry]) -> list[str | None]:
    return [getattr(entry.message, "content", None) for entry in entries]


def _said(texts: dict[int, str]) -> dict[int, UserMessage]:
    return {seq: UserMessage(content=text) for seq, text in texts.items()}


@pytest.fixture
def store(redis: aioredis.Redis, keys: KeySpace) -> TranscriptStore:
    return TranscriptStore(redis, keys, partitions=2)


async def _waiting(store: TranscriptStore, *call_ids: str) -> TurnRun:
    start = await store.begin(
        TENANT, CONVERSATION, _run("t1", 1), _said({1: "onde está meu pedido?"})
    )
    assert start is not None
    waiting = start.run.with_reply(_asks_for(*call_ids))
    assert await store.await_tools(TENANT, CONVERSATION, waiting)
    return waiting


async def test_an_interrupted_run_keeps_real_results_and_supersedes_the_pending_ones(
    store: TranscriptStore,
) -> None:
    await _waiting(store, "call-a", "call-b")
    result = json.dumps({"status": "shipped"})
    assert await store.record_result(TENANT, CONVERSATION, 1, "call-a", result) is None

    texts = {1: "onde está meu pedido?", 2: "esquece, quero cancelar"}
    start = await store.begin(TENANT, CONVERSATION, _run("t2", 2), _said(texts))

    assert start is not None
    assert not start.resumed
    roles = [entry.message.role for entry in start.history]
    assert roles == ["user", "assistant", "tool", "tool"]
    assert _contents(start.history[2:]) == [result, SUPERSEDED_RESULT]
    assert [entry.seq for entry in start.run.messages] == [2], "seq 1 is in the history already"
    with pytest.raises(StaleResult):
        await store.record_result(TENANT, CONVERSATION, 1, "call-b", result)


async def test_the_step_completes_once_with_every_result_in_call_order(
    store: TranscriptStore,
) -> None:
    await _waiting(store, "call-a", "call-b")
    assert await store.record_result(TENANT, CONVERSATION, 1, "call-b", '"b"') is None
    complete = await store.record_result(TENANT, CONVERSATION, 1, "call-a", '"a"')
    assert complete is not None
    assert complete.waiting_for == ()
    assert _contents(complete.messages[-2:]) == ['"a"', '"b"']
    again = await store.record_result(TENANT, CONVERSATION, 1, "call-a", '"other"')
    assert again is not None, "a redelivered result completes the step again, unchanged"
    assert _contents(again.messages[-2:]) == ['"a"', '"b"']


async def test_a_finished_turn_is_not_begun_again_and_an_older_token_is_refused(
    store: TranscriptStore,
) -> None:
    start = await store.begin(TENANT, CONVERSATION, _run("t1", 3), _said({1: "oi"}))
    assert start is not None
    await store.finish(TENANT, CONVERSATION, start.run, "Olá!")
    assert await store.begin(TENANT, CONVERSATION, _run("t1", 3), _said({1: "oi"})) is None
    assert await store.begin(TENANT, CONVERSATION, _run("t0", 2), _said({1: "oi"})) is None
    history = await store.history(TENANT, CONVERSATION)
    assert [entry.message.role for entry in history] == ["user", "assistant"]


async def test_a_kept_reply_wins_over_a_later_one_for_the_same_step(
    store: TranscriptStore,
) -> None:
    first = ChatReply(text="primeira", finish_reason="stop", model="m")
    second = ChatReply(text="segunda", finish_reason="stop", model="m")
    assert await store.keep_reply(TENANT, CONVERSATION, 1, 0, first) == first
    assert await store.keep_reply(TENANT, CONVERSATION, 1, 0, second) == first
    assert await store.stored_reply(TENANT, CONVERSATION, 1, 0) == first
    assert await store.stored_reply(TENANT, CONVERSATION, 1, 1) is None


async def test_images_stay_with_their_turn_and_only_a_mark_of_them_goes_into_the_history(
    store: TranscriptStore,
) -> None:
    photo = UserMessage(content="é este modelo?", images=("data:image/png;base64,iVBORw0K",))
    start = await store.begin(TENANT, CONVERSATION, _run("t1", 1), {1: photo})
    assert start is not None
    assert start.run.messages[0].message == photo, "the turn's own request shows the image"
    await store.finish(TENANT, CONVERSATION, start.run, "Sim, é o modelo azul.")

    history = await store.history(TENANT, CONVERSATION)
    assert history[0].message == UserMessage(content="é este modelo? [image]")
