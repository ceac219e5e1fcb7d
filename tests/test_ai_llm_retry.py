"""The retry policy of chat model calls on its own: hints, bounds and the exhausted hook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from ai_agent.llm import LLMRequestRejected, LLMUnavailable
from ai_agent.llm_retry import CompletionRetryPolicy, retry_after_s


class Waits:
    """Notes the waits asked for without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Provider:
    """Fails with ``errors`` in turn, then answers ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.budgets: list[float] = []

    async def __call__(self, left_s: float) -> str:
        self.budgets.append(left_s)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def busy(retry_after: float | None = None) -> LLMUnavailable:
    return LLMUnavailable("model 'm' at test is busy", transient=True, retry_after_s=retry_after)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_milliseconds(
    headers: dict[str, str] | None, expected: float | None
) -> None:
    assert retry_after_s(headers) == expected


def test_retry_after_reads_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after_s({"retry-after": later})
    assert seconds is not None
    assert 0 < seconds <= 30


async def test_hints_are_honoured_up_to_the_cap_and_backoff_fills_the_rest() -> None:
    waits = Waits()
    policy = CompletionRetryPolicy(
        max_attempts=4, backoff_initial_s=0.1, backoff_max_s=0.2, retry_after_max_s=3, sleep=waits
    )
    provider = Provider(busy(retry_after=1.5), busy(retry_after=60), busy())
    assert await policy.run(provider) == "ok"
    assert waits.delays[:2] == [1.5, 3]
    assert 0 <= waits.delays[2] <= 0.2


async def test_no_wait_starts_that_would_end_past_the_total_time_and_the_hook_hears_of_it() -> None:
    waits = Waits()
    exhausted: list[LLMUnavailable] = []
    policy = CompletionRetryPolicy(
        max_attempts=10,
        max_total_s=5,
        retry_after_max_s=3,
        sleep=waits,
        on_exhausted=exhausted.append,
    )
    provider = Provider(*[busy(retry_after=3)] * 10)
    with pytest.raises(LLMUnavailable, match=r"is busy; gave up after 2 attempts") as failed:
        await policy.run(provider)
    assert waits.delays == [3]
    assert failed.value.attempts == 2
    assert failed.value.retry_after_s == 3
    assert exhausted == [failed.value]
    assert all(budget <= 5 for budget in provider.budgets)


async def test_a_rejection_ends_the_call_at_once() -> None:
    waits = Waits()
    rejected = LLMRequestRejected("model 'm' at test rejected the request", status=400)
    provider = Provider(rejected)
    with pytest.raises(LLMRequestRejected):
        await CompletionRetryPolicy(sleep=waits).run(provider)
    assert (len(provider.budgets), waits.delays) == (1, [])
