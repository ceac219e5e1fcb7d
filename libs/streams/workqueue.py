"""The queue between a consumer's readers and its pool of workers.

``asyncio.Queue`` wakes one waiting worker per item put: a batch of 100 entries wakes the
whole pool, and when handlers are quick the first worker has drained the batch before the
others run, so they wake for nothing. Here a taker that leaves items behind wakes one more
worker, unless one is already on its way. Quick handlers are run by one worker without any
wake-up; handlers that wait on I/O pull in as many workers as there are entries.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class WorkQueue(Generic[T]):
    """An unbounded FIFO that wakes workers one at a time, only when there is work left."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._idle: deque[asyncio.Future[None]] = deque()
        self._waking = False

    def qsize(self) -> int:
        """Items waiting for a worker."""
        return len(self._items)

    @property
    def waiting(self) -> int:
        """Workers idle in ``get`` that have not been woken."""
        return sum(1 for waiter in self._idle if not waiter.done())

    def empty(self) -> bool:
        """Whether no item is waiting."""
        return not self._items

    def snapshot(self) -> list[T]:
        """The items waiting for a worker, oldest first."""
        return list(self._items)

    def put_nowait(self, item: T) -> None:
        """Add ``item`` and make sure a worker will come for it."""
        self._items.append(item)
        self._wake_one()

    def put_front(self, items: list[T]) -> None:
        """Add ``items`` ahead of everything waiting, keeping their order.

        Reclaimed and retried entries are older than any new read, and a conversation's
        older messages go first.
        """
        if not items:
            return
        self._items.extendleft(reversed(items))
        self._wake_one()

    def remove(self, drop: Callable[[T], bool]) -> int:
        """Remove the waiting items for which ``drop`` is true; return how many."""
        kept = [item for item in self._items if not drop(item)]
        removed = len(self._items) - len(kept)
        if removed:
            self._items = deque(kept)
        return removed

    def get_nowait(self) -> T:
        """Take the oldest item; raise ``IndexError`` when there is none."""
        return self._items.popleft()

    async def get(self) -> T:
        """Take the oldest item, waiting until there is one."""
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._idle.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._waking = False
                    self._wake_one()  # pass the wake-up on: someone must take the item
                raise
            self._waking = False
        item = self._items.popleft()
        if self._items:
            self._wake_one()
        return item

    def _wake_one(self) -> None:
        if self._waking:
            return
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._waking = True
                return
