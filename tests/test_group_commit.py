"""Group commit: concurrent submissions share flushes, results and errors go to their callers."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from libs.group_commit import GroupCommit


class Recorder:
    """A flush that records its batches and can be held open or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_on: int | None = None

    async def flush(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        await asyncio.wait_for(self.release.wait(), 5)
        if self.fail_on is not None and self.fail_on in items:
            raise ConnectionError(f"cannot store {self.fail_on}")
        return [item * 10 for item in items]


async def test_concurrent_submissions_share_one_flush_and_keep_their_results() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush)
    results = await asyncio.gather(*(commit.submit([n, n + 100]) for n in range(5)))
    assert results == [[n * 10, (n + 100) * 10] for n in range(5)]
    assert len(recorder.batches) == 1


async def test_what_arrives_during_a_flush_goes_in_the_next_one() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder.flush)
    first = asyncio.create_task(commit.submit([1]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    later = [asyncio.create_task(commit.submit([n])) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    recorder.release.set()
    assert await first == [10]
    assert [await task for task in later] == [[20], [30], [40]]
    assert recorder.batches == [[1], [2, 3, 4]]


async def test_batches_hold_at_most_max_batch_items() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, max_batch=3)
    await asyncio.gather(*(commit.submit([n]) for n in range(7)))
    assert [len(batch) for batch in recorder.batches] == [3, 3, 1]


async def test_a_failed_flush_fails_only_its_own_callers() -> None:
    recorder = Recorder()
    recorder.fail_on = 2
    commit = GroupCommit(recorder.flush, max_batch=2)
    outcomes = await asyncio.gather(*(commit.submit([n]) for n in range(4)), return_exceptions=True)
    assert outcomes[:2] == [[0], [10]]
    assert isinstance(outcomes[2], ConnectionError)
    assert isinstance(outcomes[3], ConnectionError)
    assert recorder.batches == [[0, 1], [2, 3]]


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder.flush)
    impatient = asyncio.create_task(commit.submit([1]))
    patient = asyncio.create_task(commit.submit([2]))
    await asyncio.sleep(0)
    impatient.cancel()
    recorder.release.set()
    assert await patient == [20]
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_a_flush_returning_the_wrong_number_of_results_is_an_error() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    commit = GroupCommit(short)
    with pytest.raises(RuntimeError, match="2 results for 3 items"):
        await commit.submit([1, 2, 3])


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(Recorder().flush, max_batch=0)


async def test_the_flush_does_not_run_in_the_context_of_the_caller_that_started_it() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
    seen: list[str] = []

    async def flush(items: list[int]) -> list[int]:
        seen.append(request_id.get())
        return items

    commit = GroupCommit(flush)

    async def caller(n: int) -> list[int]:
        request_id.set(f"request-{n}")
        return await commit.submit([n])

    assert list(await asyncio.gather(caller(1), caller(2))) == [[1], [2]]
    assert seen == ["-"], "the shared flush carries no caller's context (trace, log fields)"
