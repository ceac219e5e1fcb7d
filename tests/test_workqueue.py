"""The work queue never strands an item and wakes workers only when there is work left."""

from __future__ import annotations

import asyncio
import random

import pytest

from libs.streams.workqueue import WorkQueue


async def _run_trial(seed: int) -> tuple[int, int]:
    rnd = random.Random(seed)
    queue: WorkQueue[int | None] = WorkQueue()
    handled: list[int] = []

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            roll = rnd.random()
            if roll < 0.3:
                await asyncio.sleep(0)
            elif roll < 0.5:
                await asyncio.sleep(rnd.random() / 2000)
            handled.append(item)

    workers = [asyncio.create_task(worker()) for _ in range(rnd.randint(1, 8))]
    total = 0
    for _ in range(rnd.randint(1, 20)):
        for _ in range(rnd.randint(1, 10)):
            queue.put_nowait(total)
            total += 1
        if rnd.random() < 0.5:
            await asyncio.sleep(rnd.random() / 2000)
    async with asyncio.timeout(5):
        while len(handled) < total:
            await asyncio.sleep(0.001)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return len(handled), total


@pytest.mark.parametrize("seed", range(40))
async def test_every_item_is_handled_whatever_the_interleaving(seed: int) -> None:
    handled, total = await _run_trial(seed)
    assert handled == total


async def test_a_batch_wakes_one_worker_not_the_pool() -> None:
    queue: WorkQueue[int] = WorkQueue()
    handled = 0

    async def worker() -> None:
        nonlocal handled
        while True:
            await queue.get()
            handled += 1  # no await: a quick handler

    workers = [asyncio.create_task(worker()) for _ in range(64)]
    await asyncio.sleep(0)
    assert queue.waiting == 64
    for item in range(100):
        queue.put_nowait(item)
    assert queue.waiting == 63, "one worker is woken for the whole batch"
    async with asyncio.timeout(5):
        while handled < 100:
            await asyncio.sleep(0)
    for _ in range(3):  # let a second worker, woken while items remained, settle back
        await asyncio.sleep(0)
    assert queue.waiting == 64
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
