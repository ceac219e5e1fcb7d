"""Group commit: concurrent callers share one flush (one Redis pipeline) instead of one each.

While a flush is in flight, new submissions queue; when it returns, everything queued goes out
in the next flush. There is no timer: a lone caller is flushed on the next turn of the event
loop, and under load batches grow by themselves to what arrived during one round trip.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[T, R]):
    """Batches ``submit`` calls into calls of ``flush`` with at most ``max_batch`` items.

    ``flush`` gets the items in submission order and returns one result per item. If it
    raises, every caller of that batch gets the exception; other batches are unaffected.
    """

    def __init__(self, flush: Flush[T, R], *, max_batch: int = 256) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, got {max_batch}")
        self._flush = flush
        self._max_batch = max_batch
        self._queue: deque[tuple[list[T], asyncio.Future[list[R]]]] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, items: list[T]) -> list[R]:
        """Flush ``items`` with whatever else is queued; return their results, in order."""
        if not items:
            return []
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queue.append((items, future))
        if self._flusher is None:
            # A fresh context: the flusher serves every caller, so it must not run (and log,
            # or open spans) inside the trace of whichever request happened to start it.
            self._flusher = asyncio.create_task(
                self._drain(), name="group-commit", context=contextvars.Context()
            )
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:  # ends as soon as a flush finds nothing new queued
                batch = self._take()
                await self._flush_batch(batch)
        finally:
            self._flusher = None
            # Cancelled (the loop is shutting down): nobody would flush what is still queued.
            while self._queue:
                _, future = self._queue.popleft()
                future.cancel()

    def _take(self) -> list[tuple[list[T], asyncio.Future[list[R]]]]:
        batch = [self._queue.popleft()]
        size = len(batch[0][0])
        while self._queue and size + len(self._queue[0][0]) <= self._max_batch:
            entry = self._queue.popleft()
            size += len(entry[0])
            batch.append(entry)
        return batch

    async def _flush_batch(self, batch: list[tuple[list[T], asyncio.Future[list[R]]]]) -> None:
        items = [item for submitted, _ in batch for item in submitted]
        try:
            results = await self._flush(items)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiter of this batch
            _fail(batch, exc)
            return
        if len(results) != len(items):
            _fail(batch, RuntimeError(f"flush gave {len(results)} results for {len(items)} items"))
            return
        start = 0
        for submitted, future in batch:
            end = start + len(submitted)
            if not future.done():  # a caller may have been cancelled meanwhile
                future.set_result(list(results[start:end]))
            start = end


def _fail(batch: list[tuple[list[T], asyncio.Future[list[R]]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
