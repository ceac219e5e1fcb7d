"""A tool step that waits too long ends with ``timeout`` results, so the model still answers.

When the agent sends a step's calls to the gateway it files the step under its due time: the
step in ``tool-steps-due:{pN}`` (a sorted set per partition, scored by the due time in ms)
and its requests in ``tool-steps:{pN}`` (a hash). The AI agent worker sweeps its partitions in
the background, a bounded number of due steps per partition and pass. A sweeper claims a step
by removing it from the sorted set (``ZREM`` answers 1 to one sweeper only); for each call of
the step still without a result it publishes a ``tools.call.completed`` with the error
``timeout``, derived from the call's request. The agent's usual path takes it from there: the
first result of a call is kept, so a real result that arrives later is dropped, and once every
call has one the model is asked again and reads what timed out.

Without this, a gateway that is down, or a request that was dead-lettered, would leave the
turn waiting for its deadline, to be resumed from scratch and finally handed to a human.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from ai_agent.transcript import TranscriptStore
from events.envelope import Envelope
from events.partitions import partition_for
from events.types.tools import ToolCallCompleted, ToolCallRequested, ToolError
from libs.keys import KeySpace

_log = structlog.get_logger(__name__)

ROLE = "tool-step-timeout"
SWEEP_BATCH = 100
"""Most due steps one pass takes from one partition."""

Publish = Callable[[list[Envelope[Any]]], Awaitable[object]]
Clock = Callable[[], float]


class ToolStepTimeouts:
    """Files awaited tool steps by due time and answers the overdue ones with ``timeout``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        transcript: TranscriptStore,
        publish: Publish,
        *,
        partitions: int,
        clock: Clock = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._transcript = transcript
        self._publish = publish
        self._partitions = partitions
        self._clock = clock

    async def schedule(
        self, requests: Sequence[Envelope[ToolCallRequested]], step: int, timeout_s: float
    ) -> None:
        """File the step whose calls are ``requests`` (all of one turn) to time out."""
        if not requests:
            return
        first = requests[0]
        partition = partition_for(first.tenant_id, first.conversation_id, self._partitions)
        member = _member(first, step)
        due_ms = int((self._clock() + timeout_s) * 1000)
        stored = json.dumps([request.model_dump(mode="json") for request in requests])
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.tool_steps(partition), member, stored)
            pipe.zadd(self._keys.tool_steps_due(partition), {member: due_ms}, nx=True)
            await pipe.execute()

    async def sweep(self) -> int:
        """Answer every due step of every partition (a bounded batch each); how many."""
        answered = 0
        now_ms = int(self._clock() * 1000)
        for partition in range(self._partitions):
            answered += await self._sweep_partition(partition, now_ms)
        return answered

    async def run(self, stopping: asyncio.Event, interval_s: float = 0.5) -> None:
        """Sweep every ``interval_s`` until ``stopping`` is set; a failed pass is retried."""
        while not stopping.is_set():
            try:
                await self.sweep()
            except (RedisError, OSError) as exc:
                _log.warning("tool step sweep failed; will retry", error=str(exc))
            except Exception:  # noqa: BLE001 - the loop boundary: a dead sweep strands steps
                _log.exception("tool step sweep failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval_s)

    async def _sweep_partition(self, partition: int, now_ms: int) -> int:
        due_key, steps_key = self._keys.tool_steps_due(partition), self._keys.tool_steps(partition)
        members = await self._redis.zrangebyscore(due_key, "-inf", now_ms, 0, SWEEP_BATCH)
        answered = 0
        for raw_member in members:
            member = raw_member.decode() if isinstance(raw_member, bytes) else str(raw_member)
            if not await self._redis.zrem(due_key, member):
                continue  # another sweeper claimed it
            stored = await self._redis.hget(steps_key, member)
            await self._redis.hdel(steps_key, member)
            if stored is None:
                continue
            requests = [
                Envelope[ToolCallRequested].model_validate(item) for item in json.loads(stored)
            ]
            if await self._time_out(requests, _step_of(member)):
                answered += 1
        return answered

    async def _time_out(self, requests: list[Envelope[ToolCallRequested]], step: int) -> bool:
        first = requests[0]
        missing = await self._transcript.unanswered(
            first.tenant_id, first.conversation_id, first.payload.fencing_token, step
        )
        missing_ids = {call.id for call in missing}
        overdue = [r for r in requests if r.payload.tool_call_id in missing_ids]
        if not overdue:
            return False  # every result came in, or the turn moved on
        _log.warning(
            "tool step timed out",
            turn_id=first.payload.turn_id,
            calls=[r.payload.tool_call_id for r in overdue],
            tools=[r.payload.tool for r in overdue],
        )
        await self._publish([_timeout_result(request) for request in overdue])
        return True


def _member(request: Envelope[ToolCallRequested], step: int) -> str:
    payload = request.payload
    return "\x1f".join(
        (request.tenant_id, request.conversation_id, str(payload.fencing_token), str(step))
    )


def _step_of(member: str) -> int:
    return int(member.rsplit("\x1f", 1)[1])


def _timeout_result(request: Envelope[ToolCallRequested]) -> Envelope[ToolCallCompleted]:
    call = request.payload
    error = ToolError(
        code="timeout",
        message=f"{call.tool} did not answer in time; whether it ran is unknown. Tell the "
        "customer you could not confirm it and offer to try again or to hand over to a person.",
    )
    result = ToolCallCompleted(
        turn_id=call.turn_id,
        fencing_token=call.fencing_token,
        tool_call_id=call.tool_call_id,
        tool=call.tool,
        outcome="error",
        error=error,
        duration_ms=0,
    )
    return Envelope.derived(result, cause=request, role=ROLE, key=call.tool_call_id)
