"""Runs one declared consumer: read loops, bounded handlers, acks, retries, reclaim, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from time import monotonic, perf_counter

import redis.asyncio as aioredis
import structlog
from opentelemetry import trace
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from events.registry import EventRegistry
from libs.errors import AtendeError
from libs.keys import KeySpace
from libs.observability.metrics import (
    CONSUMER_METRICS,
    CONSUMER_RECONNECTS,
)
from libs.redis_client import blocking_client
from libs.streams.acks import AckBuffer
from libs.streams.config import RunnerConfig
from libs.streams.consumer import Consumer, Handler
from libs.streams.deadletter import DeadLetter, DeadLetterMover
from libs.streams.groups import ensure_groups, heal_groups, is_nogroup
from libs.streams.handling import EntryHandler, Verdict
from libs.streams.ownership import OwnedEntries
from libs.streams.partitions import StreamPartition, stream_partitions
from libs.streams.pending import Claimed, PendingEntries, RetrySchedule
from libs.streams.reading import PartitionReader, split_among_readers
from libs.streams.retry import ExponentialBackoff
from libs.streams.stats import StreamStats
from libs.streams.trimming import StreamTrimmer
from libs.streams.workqueue import WorkQueue

_log = structlog.get_logger("atende.streams")
_RECONNECT = ExponentialBackoff(base_ms=100, max_ms=5_000)
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
_HARD_DEADLINE_S = 5.0


_ACKNOWLEDGED = frozenset({"ok", "dropped", "skipped"})


# Housekeeping that needs no hurry: removing consumers of dead processes.
_PRUNE_EVERY_MAX_S = 60.0


@dataclass(slots=True)
class _Work:
    """An entry waiting for (or in) a handler.

    ``fresh``: just read, so its delivery count (1) already stands for the coming start.
    ``held_since``: when (``time.monotonic``) this consumer last knew it owned the entry.
    """

    where: StreamPartition
    entry_id: str
    fields: dict[bytes, bytes]
    fresh: bool
    held_since: float

    @property
    def held(self) -> tuple[StreamPartition, str]:
        return self.where, self.entry_id


class DeliveriesExhausted(AtendeError):
    """An entry's handler started more often than allowed and never finished.

    Its handler kept dying with the process (or the entry was taken from it), so running it
    again would likely kill the next process too.
    """


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
        reader_partitions = split_among_readers(self.partitions)
        self._reading_client = blocking_client(redis, len(reader_partitions))
        self._readers = [
            PartitionReader(
                self._reading_client,
                partitions,
                group=config.group,
                consumer=config.consumer_name,
                batch_size=config.batch_size,
                block_ms=config.block_ms,
            )
            for partitions in reader_partitions
        ]
        self._acks = AckBuffer(config.group)
        self._owned = OwnedEntries(redis, config.group, config.consumer_name)
        self._pending = PendingEntries(redis, config.group, config.consumer_name)
        self._retries = RetrySchedule()
        self._trimmer = StreamTrimmer(redis)
        self._dead_letters = DeadLetterMover(
            redis, config.group, config.dead_letter_maxlen, config.retry.on_exhausted
        )
        self._stats = StreamStats(redis, self.partitions, config.group, config.stats_interval_s)
        # An entry held for less than this cannot have been reclaimed: it has not been idle
        # for claim_idle_ms. Held longer (a long queue, a frozen process), it is checked.
        self._held_safely_s = config.claim_idle_ms / 2000
        self._inflight: dict[int, _Work] = {}
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
        self._loops = [
            asyncio.create_task(self._read_loop(reader), name=f"{self.consumer.name}:read:{n}")
            for n, reader in enumerate(self._readers)
        ]
        self._loops.append(asyncio.create_task(self._maintain(), name=f"{self.consumer.name}:pel"))
        # A handler may have housekeeping of its own (the dispatcher sweeps stalled turns): it
        # runs beside the reads and stops with them.
        background = getattr(self.handler, "run_background", None)
        if background is not None:
            self._loops.append(
                asyncio.create_task(background(self._stopping), name=f"{self.consumer.name}:bg")
            )
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
        await self._reading_client.aclose()
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

    async def _read_loop(self, reader: PartitionReader) -> None:
        failures = 0
        while not self._stopping.is_set():
            if self._queue.qsize() > self._low_water:
                # Enough is waiting for the workers; read again when they have caught up.
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), 1.0)
                continue
            # Taken before the read is sent: Redis delivers (and starts the entries' idle
            # time) after that, and a frozen loop may only parse the reply much later.
            sent_at = monotonic()
            try:
                read = await reader.read()
            except (ResponseError, *_TRANSIENT) as exc:
                failures = await self._after_read_error(reader, exc, failures)
                continue
            failures = 0
            for where, entries in read:
                for entry_id, fields in entries:
                    self._queue.put_nowait(_Work(where, entry_id.decode(), fields, True, sent_at))

    async def _after_read_error(
        self, reader: PartitionReader, exc: Exception, failures: int
    ) -> int:
        if isinstance(exc, ResponseError) and is_nogroup(exc):
            with contextlib.suppress(RedisError, OSError):
                if await heal_groups(self._redis, self.partitions, self.config.group):
                    return failures
        elif isinstance(exc, _TRANSIENT):
            for stream in reader.streams:
                CONSUMER_RECONNECTS.labels(stream).inc()
            _log.warning("redis unreachable; retrying", consumer=self.consumer.name, error=str(exc))
        else:
            _log.error("read failed", consumer=self.consumer.name, error=str(exc))
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
            self._inflight[slot] = work
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
        where, entry_id, fields = work.where, work.entry_id, work.fields
        if work.fresh and monotonic() - work.held_since < self._held_safely_s:
            attempt = 1  # just read: its delivery count already stands for this start
        else:
            attempt = await self._begin(work)
        if not attempt:
            _log.info("entry taken over by another consumer; skipped", entry_id=entry_id)
            return
        if attempt > self.config.retry.max_deliveries:
            verdict = Verdict(
                "dead_letter",
                error=DeliveriesExhausted(
                    f"its handler started {attempt - 1} times and never finished (the process "
                    f"died or lost the entry each time); max_deliveries="
                    f"{self.config.retry.max_deliveries}"
                ),
            )
        else:
            verdict = await self._entries.run(where, entry_id, fields, attempt)
        outcome: str = verdict.outcome
        if outcome in _ACKNOWLEDGED:
            self._acks.add(where.key, entry_id)
        else:
            outcome = await self._retry_or_give_up(work, attempt, verdict)
        self._tallies[where.stream].record(outcome, perf_counter() - started)

    async def _begin(self, work: _Work) -> int:
        """The attempt this handler start is, counted in Redis; 0 when the entry is not ours.

        A retry or a reclaimed entry counts its start in the pending list, so attempts are
        handler starts across every process, not queue hand-offs. A fresh read that waited
        long enough to have been reclaimed is checked to be still ours.
        """
        if not work.fresh:
            return await self._owned.start(work.where, work.entry_id)
        return await self._owned.confirm(work.where, work.entry_id)

    async def _retry_or_give_up(self, work: _Work, attempt: int, verdict: Verdict) -> str:
        where, entry_id = work.where, work.entry_id
        error = verdict.error or RuntimeError("unknown failure")
        if verdict.outcome == "retry" and not self.config.retry.exhausted(attempt):
            backoff = self.config.retry.backoff
            delay_ms = min(verdict.delay_ms or backoff.delay_ms(attempt), backoff.max_ms)
            loop = asyncio.get_running_loop()
            self._retries.add(where, entry_id, work.fields, loop.time() + delay_ms / 1000)
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
        await self._dead_letters.move(where, letter, work.fields, verdict.received, error)
        return "dead_letter"

    # -- pending entries: retries, reclaim, keep-alive, trimming, pruning --------------------

    async def _maintain(self) -> None:
        """Housekeeping on its own schedule, whatever the backlog: reclaiming must not wait
        for the queue to drain, or a dead consumer's entries wait behind every new one."""
        loop = asyncio.get_running_loop()
        every_s = {
            "hold": max(self.config.claim_idle_ms / 3000, 0.05),
            "trim": self.config.stats_interval_s,
            "prune": min(self.config.consumer_prune_idle_ms / 2000, _PRUNE_EVERY_MAX_S),
        }
        next_at = dict.fromkeys(every_s, loop.time())
        failures = dict.fromkeys(every_s, 0)
        while not self._stopping.is_set():
            self._retry_due(loop.time())
            for task, due_at in next_at.items():
                if loop.time() < due_at:
                    continue
                # Each task fails on its own: a trim that keeps failing must not hold back
                # the keep-alive and the reclaim.
                try:
                    await self._housekeeping(task)
                    failures[task] = 0
                    next_at[task] = loop.time() + every_s[task]
                except (RedisError, OSError) as exc:
                    failures[task] += 1
                    _log.warning("stream housekeeping failed", task=task, error=str(exc))
                    retry_s = _RECONNECT.delay_ms(failures[task]) / 1000
                    next_at[task] = loop.time() + min(retry_s, every_s[task])
            await self._sleep_until(min(*next_at.values(), self._retries.next_due_at() or math.inf))

    async def _housekeeping(self, task: str) -> None:
        if task == "hold":
            await self._keep_alive()
            await self._reclaim_idle()
        elif task == "trim":
            await self._trimmer.trim(self.partitions)
        else:
            await self._pending.prune_idle_consumers(
                self.partitions, self.config.consumer_prune_idle_ms
            )

    def _retry_due(self, now: float) -> None:
        due = self._retries.pop_due(now)
        held_since = monotonic()
        self._queue.put_front(
            [_Work(d.where, d.entry_id, d.fields, False, held_since) for d in due]
        )

    async def _reclaim_idle(self) -> None:
        for where in self.partitions:
            if self._stopping.is_set():
                return
            try:
                claimed = await self._pending.reclaim_idle(
                    where, self.config.claim_idle_ms, self.config.batch_size
                )
            except ResponseError as exc:
                if not is_nogroup(exc):
                    raise
                continue  # the read loop heals the group
            if claimed:
                _log.info("reclaimed idle entries", key=where.key, count=len(claimed))
                self._enqueue_first(claimed)

    def _enqueue_first(self, claimed: list[Claimed]) -> None:
        # Ahead of new reads: these are older, and a conversation's older messages go first.
        now = monotonic()
        self._queue.put_front([_Work(c.where, c.entry_id, c.fields, False, now) for c in claimed])

    async def _keep_alive(self) -> None:
        """Reset the idle time of every entry we hold, so nobody reclaims it from us.

        That is entries being handled, queued for a worker and waiting for a retry; left
        idle, another consumer would reclaim them and both would run them. Entries another
        consumer took over meanwhile (we were frozen, say) are dropped here, not run twice.
        """
        queued = [work for work in self._queue.snapshot() if work is not None]
        held = [work.held for work in self._inflight.values()]
        held += [work.held for work in queued]
        held += self._retries.held()
        if not held:
            return
        now = monotonic()
        lost = set(await self._owned.touch(held))
        for work in queued:
            work.held_since = now
        if not lost:
            return
        dropped = self._queue.remove(lambda work: work is not None and work.held in lost)
        self._retries.forget(lost)
        _log.warning(
            "entries taken over by another consumer",
            consumer=self.consumer.name,
            count=len(lost),
            dropped_from_queue=dropped,
        )

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
        unfinished = [work.held for work in self._inflight.values()]
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=_HARD_DEADLINE_S)
            _log.warning("handlers cancelled at shutdown", count=len(unfinished))
        while not self._queue.empty():
            work = self._queue.get_nowait()
            if work is not None:
                unfinished.append(work.held)
        return unfinished

    async def _settle(self, unfinished: list[tuple[StreamPartition, str]]) -> None:
        """Flush acks, hand back unfinished entries, and leave the group if nothing is ours."""
        try:
            async with asyncio.timeout(_HARD_DEADLINE_S):
                await self._acks.flush(self._redis)
                await self._owned.release(unfinished, self.config.claim_idle_ms)
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
