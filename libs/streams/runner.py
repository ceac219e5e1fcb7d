"""Runs one declared consumer: read loops, bounded handlers, acks, retries, reclaim, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from time import perf_counter

import redis.asyncio as aioredis
import structlog
from opentelemetry import trace
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from events.registry import EventRegistry
from libs.keys import KeySpace
from libs.observability.metrics import (
    CONSUMER_METRICS,
    CONSUMER_RECONNECTS,
)
from libs.streams.acks import AckBuffer
from libs.streams.config import RunnerConfig
from libs.streams.consumer import Consumer, Handler
from libs.streams.deadletter import DeadLetter, DeadLetterMover
from libs.streams.groups import ensure_groups, is_nogroup, recreate_group
from libs.streams.handling import EntryHandler, Verdict
from libs.streams.partitions import StreamPartition, stream_partitions
from libs.streams.pending import Claimed, PendingEntries, RetrySchedule
from libs.streams.retry import ExponentialBackoff
from libs.streams.stats import StreamStats
from libs.streams.workqueue import WorkQueue

_log = structlog.get_logger("atende.streams")
ReadResponse = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None
_RECONNECT = ExponentialBackoff(base_ms=100, max_ms=5_000)
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
_HARD_DEADLINE_S = 5.0


_ACKNOWLEDGED = frozenset({"ok", "dropped", "skipped"})


@dataclass(slots=True)
class _Work:
    where: StreamPartition
    entry_id: str
    fields: dict[bytes, bytes]
    attempt: int


class DeliveriesExhausted(Exception):
    """An entry came back more often than allowed, e.g. its handler kept killing the process."""


class ConsumerRunner:
    """Consumes a declared consumer's streams until stopped; see DESIGN.md, Delivery semantics.

    ``tracer`` records a CONSUMER span per event; without one the event's trace context is
    carried (logs, published events) but no span is built.
    """

    def __init__(
        self,
        consumer: Consumer,
        handler: Handler,
        *,
        redis: aioredis.Redis,
        keys: KeySpace,
        registry: EventRegistry,
        config: RunnerConfig,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.config = config
        self.partitions = stream_partitions(keys, consumer.streams, config.partitions)
        self._redis = redis
        self._entries = EntryHandler(
            consumer,
            handler,
            registry,
            config.group,
            config.handler_timeout_s,
            tracer,
        )
        self._queue: WorkQueue[_Work | None] = WorkQueue()
        self._room = asyncio.Event()
        self._low_water = config.concurrency
        self._workers: list[asyncio.Task[None]] = []
        self._acks = AckBuffer(config.group)
        self._pending = PendingEntries(redis, config.group, config.consumer_name)
        self._retries = RetrySchedule()
        self._dead_letters = DeadLetterMover(
            redis, config.group, config.dead_letter_maxlen, config.retry.on_exhausted
        )
        self._stats = StreamStats(redis, self.partitions, config.group, config.stats_interval_s)
        self._inflight: dict[int, tuple[StreamPartition, str]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._services: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._tallies = {
            where.stream: CONSUMER_METRICS.tally(where.stream, config.group)
            for where in self.partitions
        }

    @property
    def inflight(self) -> int:
        """Handlers running now."""
        return len(self._inflight)

    async def start(self) -> None:
        """Create the groups (when Redis is up) and start reading."""
        try:
            await ensure_groups(
                self._redis,
                [w.key for w in self.partitions],
                self.config.group,
                self.config.start_id,
            )
        except _TRANSIENT as exc:
            _log.warning("redis unreachable at start; read loops will retry", error=str(exc))
        loop_names = [f"{self.consumer.name}:read:{w.key}" for w in self.partitions]
        self._loops = [
            asyncio.create_task(self._read_loop(where), name=name)
            for where, name in zip(self.partitions, loop_names, strict=True)
        ]
        self._loops.append(asyncio.create_task(self._maintain(), name=f"{self.consumer.name}:pel"))
        self._workers = [
            asyncio.create_task(self._work_loop(slot), name=f"{self.consumer.name}:work:{slot}")
            for slot in range(self.config.concurrency)
        ]
        self._services = [
            asyncio.create_task(self._ack_loop(), name=f"{self.consumer.name}:ack"),
            asyncio.create_task(self._stats.run(), name=f"{self.consumer.name}:stats"),
        ]
        _log.info(
            "consumer started",
            consumer=self.consumer.name,
            group=self.config.group,
            instance=self.config.consumer_name,
            streams=list(self.consumer.streams),
            partitions=self.config.partitions,
        )

    async def stop(self) -> None:
        """Stop reading, let in-flight handlers finish within the grace, hand back the rest."""
        if self._stopping.is_set():
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace_s
        self._stopping.set()
        self._wakeup.set()
        await _finish(self._loops, max(self.config.block_ms / 1000 + 1, 0.1))
        unfinished = await self._drain(max(deadline - loop.time(), 0))
        unfinished.extend(self._retries.drain())
        # The ack loop stops first: a flush it had under way puts its ids back in the buffer,
        # and the final flush in _settle sends them.
        await _finish(self._services, 0)
        await self._settle(unfinished)
        _log.info(
            "consumer stopped",
            consumer=self.consumer.name,
            handed_back=len(unfinished),
            instance=self.config.consumer_name,
        )

    # -- reading ------------------------------------------------------------------------------

    async def _read_loop(self, where: StreamPartition) -> None:
        failures = 0
        while not self._stopping.is_set():
            if self._queue.qsize() > self._low_water:
                # Enough is waiting for the workers; read again when they have caught up.
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), 1.0)
                continue
            try:
                response: ReadResponse = await self._redis.xreadgroup(  # type: ignore[assignment]
                    self.config.group,
                    self.config.consumer_name,
                    {where.key: ">"},
                    count=self.config.batch_size,
                    block=self.config.block_ms,
                )
            except (ResponseError, *_TRANSIENT) as exc:
                failures = await self._after_read_error(where, exc, failures)
                continue
            failures = 0
            for _key, entries in response or ():
                for entry_id, fields in entries:
                    self._queue.put_nowait(_Work(where, entry_id.decode(), fields, 1))

    async def _after_read_error(self, where: StreamPartition, exc: Exception, failures: int) -> int:
        if isinstance(exc, ResponseError) and is_nogroup(exc):
            if await recreate_group(self._redis, where.stream, where.key, self.config.group):
                return failures
        elif isinstance(exc, _TRANSIENT):
            CONSUMER_RECONNECTS.labels(where.stream).inc()
            _log.warning("redis unreachable; retrying", key=where.key, error=str(exc))
        else:
            _log.error("read failed", key=where.key, error=str(exc))
        failures += 1
        await self._pause(_RECONNECT.delay_ms(failures) / 1000)
        return failures

    # -- handling -----------------------------------------------------------------------------

    async def _work_loop(self, slot: int) -> None:
        """One of ``concurrency`` workers: handlers never run more than that many at once."""
        while True:
            work = await self._queue.get()
            if work is None:
                return
            if self._queue.qsize() <= self._low_water:
                self._room.set()
            self._inflight[slot] = (work.where, work.entry_id)
            try:
                await self._run_entry(work)
            except Exception:  # noqa: BLE001 - the loop boundary: one bad entry never stops a worker
                # Not even a broken log stream may end a worker: it would shrink concurrency
                # for good while the process still looks healthy.
                with contextlib.suppress(Exception):
                    _log.exception("entry failed outside its handler", entry_id=work.entry_id)
            finally:
                del self._inflight[slot]

    async def _run_entry(self, work: _Work) -> None:
        started = perf_counter()
        where, entry_id, fields, attempt = work.where, work.entry_id, work.fields, work.attempt
        if attempt > self.config.retry.max_deliveries:
            verdict = Verdict(
                "dead_letter",
                error=DeliveriesExhausted(
                    f"delivered {attempt} times, more than max_deliveries="
                    f"{self.config.retry.max_deliveries}; its handler never finished"
                ),
            )
        else:
            verdict = await self._entries.run(where, entry_id, fields, attempt)
        outcome: str = verdict.outcome
        if outcome in _ACKNOWLEDGED:
            self._acks.add(where.key, entry_id)
        else:
            outcome = await self._retry_or_give_up(where, entry_id, fields, attempt, verdict)
        self._tallies[where.stream].record(outcome, perf_counter() - started)

    async def _retry_or_give_up(
        self,
        where: StreamPartition,
        entry_id: str,
        fields: dict[bytes, bytes],
        attempt: int,
        verdict: Verdict,
    ) -> str:
        error = verdict.error or RuntimeError("unknown failure")
        if verdict.outcome == "retry" and not self.config.retry.exhausted(attempt):
            backoff = self.config.retry.backoff
            delay_ms = min(verdict.delay_ms or backoff.delay_ms(attempt), backoff.max_ms)
            loop = asyncio.get_running_loop()
            self._retries.add(where, entry_id, attempt, loop.time() + delay_ms / 1000, delay_ms)
            self._wakeup.set()
            _log.warning(
                "handler failed; will retry",
                error=f"{type(error).__name__}: {error}",
                attempt=attempt,
                retry_in_ms=delay_ms,
            )
            return "retry"
        letter = DeadLetter.of(
            error,
            stream=where.stream,
            partition=where.partition,
            entry_id=entry_id,
            group=self.config.group,
            consumer=self.config.consumer_name,
            attempts=attempt,
        )
        await self._dead_letters.move(where, letter, fields, verdict.delivery, error)
        return "dead_letter"

    # -- pending entries: retries, reclaim, keep-alive --------------------------------------

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        reclaim_every_s = max(self.config.claim_idle_ms / 2000, 0.05)
        next_reclaim = loop.time()
        failures = 0
        while not self._stopping.is_set():
            try:
                await self._retry_due(loop.time())
                if loop.time() >= next_reclaim:
                    await self._keep_alive()
                    await self._reclaim_idle()
                    next_reclaim = loop.time() + reclaim_every_s
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                _log.warning("pending-entry maintenance failed", error=str(exc))
                await self._pause(_RECONNECT.delay_ms(failures) / 1000)
                continue
            wake_at = min(next_reclaim, self._retries.next_due_at() or math.inf)
            await self._sleep_until(wake_at)

    async def _retry_due(self, now: float) -> None:
        due = self._retries.pop_due(now, limit=self.config.batch_size)
        if due:
            self._enqueue(await self._pending.claim_retries(due))

    async def _reclaim_idle(self) -> None:
        for where in self.partitions:
            room = min(self.config.batch_size, self._low_water - self._queue.qsize())
            if room <= 0 or self._stopping.is_set():
                return
            try:
                claimed = await self._pending.reclaim_idle(where, self.config.claim_idle_ms, room)
            except ResponseError as exc:
                if not is_nogroup(exc):
                    raise
                continue  # the read loop of this partition heals the group
            if claimed:
                _log.info("reclaimed idle entries", key=where.key, count=len(claimed))
            self._enqueue(claimed)

    async def _keep_alive(self) -> None:
        # Entries read but still queued for a worker are as much ours as those being handled;
        # left idle, another consumer would reclaim them and both would handle them.
        held = list(self._inflight.values())
        held.extend(
            (work.where, work.entry_id) for work in self._queue.snapshot() if work is not None
        )
        if held:
            await self._pending.keep_alive(held, self.config.claim_idle_ms // 3)

    def _enqueue(self, claimed: list[Claimed]) -> None:
        for entry in claimed:
            self._queue.put_nowait(_Work(entry.where, entry.entry_id, entry.fields, entry.attempt))

    # -- acknowledgements ----------------------------------------------------------------------

    async def _ack_loop(self) -> None:
        failures = 0
        while True:
            await self._acks.ready.wait()
            try:
                await self._acks.flush(self._redis)
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                _log.warning("acknowledgement failed; will resend", error=str(exc))
                await asyncio.sleep(_RECONNECT.delay_ms(failures) / 1000)

    # -- shutdown ------------------------------------------------------------------------------

    async def _drain(self, grace_s: float) -> list[tuple[StreamPartition, str]]:
        """Let workers finish what was read, within ``grace_s``; return what they could not."""
        for _ in self._workers:
            self._queue.put_nowait(None)  # after every entry already queued
        _done, late = await asyncio.wait(self._workers, timeout=grace_s)
        unfinished = list(self._inflight.values())
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=_HARD_DEADLINE_S)
            _log.warning("handlers cancelled at shutdown", count=len(unfinished))
        while not self._queue.empty():
            work = self._queue.get_nowait()
            if work is not None:
                unfinished.append((work.where, work.entry_id))
        return unfinished

    async def _settle(self, unfinished: list[tuple[StreamPartition, str]]) -> None:
        """Flush acks, hand back unfinished entries, and leave the group if nothing is ours."""
        try:
            async with asyncio.timeout(_HARD_DEADLINE_S):
                await self._acks.flush(self._redis)
                await self._pending.hand_back(unfinished, self.config.claim_idle_ms)
                await self._pending.leave_if_idle(self.partitions)
        except (RedisError, OSError, TimeoutError) as exc:
            _log.error("could not settle with redis at shutdown", error=str(exc))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _sleep_until(self, wake_at: float) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup.clear()
        timeout = max(wake_at - loop.time(), 0)
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)


async def _finish(tasks: list[asyncio.Task[None]], timeout_s: float) -> None:
    """Wait for ``tasks`` up to ``timeout_s``, then cancel what is left and wait for that."""
    if not tasks:
        return
    if timeout_s > 0:
        await asyncio.wait(tasks, timeout=timeout_s)
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=_HARD_DEADLINE_S)
