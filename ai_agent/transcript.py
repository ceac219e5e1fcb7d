"""A conversation's transcript as the agent keeps it between LLM calls: one Redis hash.

The hash lives on the conversation's partition slot (``{pN}``), like every key about a
conversation, and holds:

- ``history``: the messages of finished turns (user, assistant, tool), oldest first, each
  user message with the ``seq`` of the inbound message it holds;
- ``run``: the open turn's run (``TurnRun``): its token, step, messages so far and the tool
  calls it waits for;
- ``result:<token>:<call id>``: each tool result as it arrives, one field per call, so
  parallel results never overwrite each other;
- ``reply:<token>:<step>``: the model's reply of each step, so a redelivered event reuses it
  instead of asking the model again;
- ``done``: ``<turn id>:<token>`` of the last finished run, so a redelivered turn is not
  answered twice.

A run that a newer token replaces (``interrupt``, or a stalled turn resumed elsewhere) is
folded into the history: its calls that ran keep their results, each one still pending gets
a synthetic ``{"error": "superseded"}`` result, so the next LLM call sees a valid history.
Every transition is one WATCH/MULTI transaction on the hash, retried a bounded number of times.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict
from redis.exceptions import WatchError

from ai_agent.llm import (
    AssistantMessage,
    ChatMessage,
    ChatReply,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
)
from events.partitions import partition_for
from libs.errors import AtendeError
from libs.keys import KeySpace, hash_tag

SUPERSEDED_RESULT = json.dumps({"error": "superseded"})
"""The result a tool call gets when its turn was superseded before the result came."""

_RUN = "run"
_HISTORY = "history"
_DONE = "done"
_TRANSACTION_ATTEMPTS = 20

T = TypeVar("T")


class TranscriptContention(AtendeError):
    """Other writers kept changing the conversation's transcript; the event is tried again."""


class TranscriptEntry(BaseModel):
    """One message of the transcript; ``seq`` is set on a user message (its inbound seq)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int | None = None
    message: ChatMessage


class TurnRun(BaseModel):
    """The open turn as far as the agent got: ``step`` LLM calls made, tools awaited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    turn_id: str
    token: int
    profile: str
    channel_id: str
    step: int = 0
    messages: tuple[TranscriptEntry, ...] = ()
    waiting_for: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()

    def with_reply(
        self,
        reply: ChatReply,
        *,
        answered: tuple[ToolMessage, ...] = (),
        waiting_for: tuple[ToolCall, ...] | None = None,
    ) -> TurnRun:
        """The run after ``reply`` asked for tools, the step counted: the calls ``answered``
        already (by the agent itself) follow it, ``waiting_for`` (default: every call) are
        awaited."""
        entries = (
            TranscriptEntry(message=reply.as_message()),
            *(TranscriptEntry(message=message) for message in answered),
        )
        return self.model_copy(
            update={
                "step": self.step + 1,
                "messages": (*self.messages, *entries),
                "waiting_for": reply.tool_calls if waiting_for is None else waiting_for,
                "usage": add_usage(self.usage, reply.usage),
            }
        )


@dataclass(frozen=True, slots=True)
class TurnStart:
    """What ``begin`` found: the finished turns' messages and the (new or existing) run."""

    history: tuple[TranscriptEntry, ...]
    run: TurnRun
    resumed: bool
    """True when the run already existed (a redelivered turn event)."""


def add_usage(total: Usage, more: Usage) -> Usage:
    """``total`` plus ``more``."""
    return Usage(
        prompt_tokens=total.prompt_tokens + more.prompt_tokens,
        completion_tokens=total.completion_tokens + more.completion_tokens,
    )


class TranscriptStore:
    """Reads and moves the transcripts of any conversation of one deployment."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        *,
        partitions: int,
        max_history_messages: int = 60,
        ttl_s: int = 86_400,
    ) -> None:
        if max_history_messages < 1 or ttl_s < 1:
            raise ValueError("max_history_messages and ttl_s must be positive")
        self._redis = redis
        self._keys = keys
        self._partitions = partitions
        self._max_history = max_history_messages
        self._ttl_s = ttl_s

    def key_of(self, tenant_id: str, conversation_id: str) -> str:
        """The hash of ``conversation_id``'s transcript."""
        partition = partition_for(tenant_id, conversation_id, self._partitions)
        return f"{self._keys.namespace}:agent:{hash_tag(partition)}:{tenant_id}:{conversation_id}"

    async def begin(
        self,
        tenant_id: str,
        conversation_id: str,
        new: TurnRun,
        inbound: Mapping[int, UserMessage],
    ) -> TurnStart | None:
        """Open ``new``'s run with the ``inbound`` messages (by seq) not yet in the history.

        Returns the run already there when it has ``new``'s token (a redelivery); folds an
        older token's run into the history first; None when the turn is stale or finished.
        """
        key = self.key_of(tenant_id, conversation_id)

        async def attempt(pipe: aioredis.client.Pipeline) -> TurnStart | None:
            values = await pipe.hgetall(key)
            fields = {_text(name): _text(value) for name, value in values.items()}
            run = _run_of(fields)
            if _finished(fields.get(_DONE), new.turn_id, new.token):
                return None
            if run is not None and run.token > new.token:
                return None
            history = _history_of(fields)
            if run is not None and run.token == new.token:
                return TurnStart(history, run, resumed=True)
            if run is not None:
                history = (*history, *fold(run, _results_of(fields, run)))
            known = {entry.seq for entry in history if entry.seq is not None}
            users = tuple(
                TranscriptEntry(seq=seq, message=message)
                for seq, message in sorted(inbound.items())
                if seq not in known
            )
            started = new.model_copy(update={"messages": users})
            history = self._bounded(history)
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.delete(key)
            pipe.hset(key, mapping={_HISTORY: _dump_history(history), _RUN: _dump(started)})
            pipe.expire(key, self._ttl_s)
            return TurnStart(history, started, resumed=False)

        return await self._transact(key, attempt)

    async def record_result(
        self, tenant_id: str, conversation_id: str, token: int, call_id: str, content: str
    ) -> TurnRun | None:
        """Keep one tool result; the run with every result added once all are in, else None.

        Raises ``StaleResult`` when no run of ``token`` waits for ``call_id``.
        """
        key = self.key_of(tenant_id, conversation_id)
        field = _result_field(token, call_id)

        async def attempt(pipe: aioredis.client.Pipeline) -> TurnRun | None:
            raw = await pipe.hget(key, _RUN)
            run = TurnRun.model_validate_json(raw) if raw is not None else None
            if run is None or run.token != token:
                raise StaleResult(f"no run of token {token} is open")
            if call_id not in {call.id for call in run.waiting_for}:
                raise StaleResult(f"the run of token {token} does not wait for call {call_id!r}")
            names = [_result_field(token, call.id) for call in run.waiting_for]
            stored = await pipe.hmget(key, names)
            results = {
                call.id: _text(value)
                for call, value in zip(run.waiting_for, stored, strict=True)
                if value is not None
            }
            results.setdefault(call_id, content)
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.hsetnx(key, field, content)
            if len(results) < len(run.waiting_for):
                return None
            tool_messages = tuple(
                TranscriptEntry(message=ToolMessage(tool_call_id=call.id, content=results[call.id]))
                for call in run.waiting_for
            )
            return run.model_copy(
                update={"messages": (*run.messages, *tool_messages), "waiting_for": ()}
            )

        return await self._transact(key, attempt)

    async def unanswered(
        self, tenant_id: str, conversation_id: str, token: int, step: int
    ) -> tuple[ToolCall, ...]:
        """The calls of step ``step`` of the run of ``token`` still without a result; none
        when that run has moved on (answered, superseded, or past that step)."""
        fields = await self._redis.hgetall(self.key_of(tenant_id, conversation_id))
        decoded = {_text(name): _text(value) for name, value in fields.items()}
        run = _run_of(decoded)
        if run is None or (run.token, run.step) != (token, step):
            return ()
        results = _results_of(decoded, run)
        return tuple(call for call in run.waiting_for if call.id not in results)

    async def history(self, tenant_id: str, conversation_id: str) -> tuple[TranscriptEntry, ...]:
        """The messages of the conversation's finished turns, oldest first."""
        raw = await self._redis.hget(self.key_of(tenant_id, conversation_id), _HISTORY)
        return _history_of({_HISTORY: _text(raw)} if raw is not None else {})

    async def stored_reply(
        self, tenant_id: str, conversation_id: str, token: int, step: int
    ) -> ChatReply | None:
        """The model's reply of ``step`` of the run of ``token``, if one was kept."""
        key = self.key_of(tenant_id, conversation_id)
        raw = await self._redis.hget(key, f"reply:{token}:{step}")
        return ChatReply.model_validate_json(raw) if raw is not None else None

    async def claim_step(self, tenant_id: str, conversation_id: str, token: int, step: int) -> bool:
        """Whether this handler asks the model for ``step`` of the run of ``token``.

        Two deliveries of one event (the dispatcher republished it, or a redelivery raced the
        first) must not both call the model and both answer: the first to claim asks; a
        claim whose handler died is outlived by the turn's deadline, which resumes the turn
        under a new token, so claims need no expiry of their own.
        """
        key = self.key_of(tenant_id, conversation_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, f"asking:{token}:{step}", "1")
            pipe.expire(key, self._ttl_s)
            claimed, _ = await pipe.execute()
        return bool(claimed)

    async def keep_reply(
        self, tenant_id: str, conversation_id: str, token: int, step: int, reply: ChatReply
    ) -> ChatReply:
        """Keep ``reply`` for the step unless another was kept first; the one kept."""
        key = self.key_of(tenant_id, conversation_id)
        field = f"reply:{token}:{step}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, field, reply.model_dump_json())
            pipe.hget(key, field)
            pipe.expire(key, self._ttl_s)
            _, raw, _ = await pipe.execute()
        return ChatReply.model_validate_json(raw)

    async def await_tools(self, tenant_id: str, conversation_id: str, run: TurnRun) -> bool:
        """Store ``run`` (waiting for its tools) if its token's run is still the open one."""
        key = self.key_of(tenant_id, conversation_id)

        async def attempt(pipe: aioredis.client.Pipeline) -> bool:
            raw = await pipe.hget(key, _RUN)
            current = TurnRun.model_validate_json(raw) if raw is not None else None
            if current is None or current.token != run.token:
                return False
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.hset(key, _RUN, _dump(run))
            pipe.expire(key, self._ttl_s)
            return True

        return await self._transact(key, attempt)

    async def finish(self, tenant_id: str, conversation_id: str, run: TurnRun, answer: str) -> None:
        """Move ``run`` and its ``answer`` into the history and close it (if still open)."""
        key = self.key_of(tenant_id, conversation_id)

        async def attempt(pipe: aioredis.client.Pipeline) -> None:
            values = await pipe.hgetall(key)
            fields = {_text(name): _text(value) for name, value in values.items()}
            current = _run_of(fields)
            if current is None or current.token != run.token:
                return
            final = TranscriptEntry(message=AssistantMessage(content=answer))
            history = self._bounded((*_history_of(fields), *run.messages, final))
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.delete(key)
            pipe.hset(
                key,
                mapping={_HISTORY: _dump_history(history), _DONE: f"{run.turn_id}:{run.token}"},
            )
            pipe.expire(key, self._ttl_s)

        await self._transact(key, attempt)

    async def _transact(
        self, key: str, attempt: Callable[[aioredis.client.Pipeline], Awaitable[T]]
    ) -> T:
        for _ in range(_TRANSACTION_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    outcome = await attempt(pipe)
                    if pipe.explicit_transaction:
                        await pipe.execute()
                except WatchError:
                    continue
                return outcome
        raise TranscriptContention(
            f"the transcript {key} changed under {_TRANSACTION_ATTEMPTS} attempts in a row"
        )

    def _bounded(self, history: tuple[TranscriptEntry, ...]) -> tuple[TranscriptEntry, ...]:
        # Cut only before a user message: a tool result must never lose its assistant call.
        if len(history) <= self._max_history:
            return history
        for index in range(len(history) - self._max_history, len(history)):
            if history[index].message.role == "user":
                return history[index:]
        return history


class StaleResult(AtendeError):
    """A tool result for a run that is no longer open, or that does not wait for it."""


def fold(run: TurnRun, results: Mapping[str, str]) -> tuple[TranscriptEntry, ...]:
    """``run``'s messages with a result for each awaited call: its own, or ``superseded``."""
    answers = tuple(
        TranscriptEntry(
            message=ToolMessage(
                tool_call_id=call.id, content=results.get(call.id, SUPERSEDED_RESULT)
            )
        )
        for call in run.waiting_for
    )
    return (*run.messages, *answers)


def _finished(done: str | None, turn_id: str, token: int) -> bool:
    if done is None:
        return False
    done_turn, _, done_token = done.rpartition(":")
    return int(done_token) > token or (done_turn == turn_id and int(done_token) == token)


def _run_of(fields: Mapping[str, str]) -> TurnRun | None:
    raw = fields.get(_RUN)
    return TurnRun.model_validate_json(raw) if raw else None


def _history_of(fields: Mapping[str, str]) -> tuple[TranscriptEntry, ...]:
    raw = fields.get(_HISTORY)
    return tuple(TranscriptEntry.model_validate(item) for item in json.loads(raw)) if raw else ()


def _results_of(fields: Mapping[str, str], run: TurnRun) -> dict[str, str]:
    found = {call.id: fields.get(_result_field(run.token, call.id)) for call in run.waiting_for}
    return {call_id: value for call_id, value in found.items() if value is not None}


def _result_field(token: int, call_id: str) -> str:
    return f"result:{token}:{call_id}"


def _dump(run: TurnRun) -> str:
    return run.model_dump_json()


def _dump_history(history: tuple[TranscriptEntry, ...]) -> str:
    # Images are for the turn that received them: the history keeps a mark, not the bytes.
    settled = [
        entry.model_copy(update={"message": entry.message.without_images()})
        if isinstance(entry.message, UserMessage)
        else entry
        for entry in history
    ]
    return json.dumps([entry.model_dump(mode="json") for entry in settled], ensure_ascii=False)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
