"""Retry policy, Retry-After parsing and text splitting of the outbound adapters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.send_retry import SendRetryPolicy
from channels.sending_errors import ProviderUnavailable, RateLimited, Rejected, SendError
from channels.text_split import split_text
from libs.retry_after import parse_retry_after
from tests.provider_servers import RecordingSleep

NOW = datetime(2025, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0.05", 0.05),
        ("Tue, 21 Oct 2025 07:28:30 GMT", 30.0),
        ("Tue, 21 Oct 2025 07:27:00 GMT", 0.0),  # in the past: retry now
        ("-5", None),  # not a delay (RFC 9110): no hint
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


async def test_backoff_grows_with_jitter_within_bounds_and_attempts_are_counted() -> None:
    sleep = RecordingSleep()
    exhausted: list[SendError] = []
    policy = SendRetryPolicy(
        max_attempts=5,
        backoff_initial_s=0.1,
        backoff_max_s=0.4,
        sleep=sleep,
        on_exhausted=exhausted.append,
    )
    calls = 0

    async def always_down() -> None:
        nonlocal calls
        calls += 1
        raise ProviderUnavailable("down", status=503)

    with pytest.raises(ProviderUnavailable) as caught:
        await policy.run(always_down)
    assert calls == 5
    assert caught.value.attempts == 5
    assert exhausted == [caught.value]
    assert len(sleep.delays) == 4
    assert all(0 <= delay <= 0.4 for delay in sleep.delays)


async def test_permanent_errors_are_never_retried() -> None:
    sleep = RecordingSleep()
    calls = 0

    async def rejected() -> None:
        nonlocal calls
        calls += 1
        raise Rejected("no", status=400)

    with pytest.raises(Rejected):
        await SendRetryPolicy(sleep=sleep).run(rejected)
    assert calls == 1
    assert sleep.delays == []


async def test_the_total_time_budget_bounds_hinted_waits() -> None:
    sleep = RecordingSleep()
    calls = 0

    async def throttled() -> None:
        nonlocal calls
        calls += 1
        raise RateLimited("slow down", status=429, retry_after_s=2.0)

    with pytest.raises(RateLimited):
        await SendRetryPolicy(max_attempts=10, max_total_s=5.0, sleep=sleep).run(throttled)
    assert sleep.delays == [2.0, 2.0]  # a third wait would end past 5 s
    assert calls == 3


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        SendRetryPolicy(max_attempts=0)


def test_split_text_prefers_paragraphs_then_words() -> None:
    text = "First paragraph here.\n\nSecond one is a bit longer than that."
    assert split_text(text, 40) == [
        "First paragraph here.",
        "Second one is a bit longer than that.",
    ]
    assert split_text("alpha beta gamma", 11) == ["alpha beta", "gamma"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert split_text("short", 10) == ["short"]


def test_split_text_can_count_utf16_units() -> None:
    emoji = "😀" * 5  # two UTF-16 units each
    chunks = split_text(emoji, 4, measure="utf16")
    assert chunks == ["😀😀", "😀😀", "😀"]
