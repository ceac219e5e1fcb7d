"""When a chat model call is tried again, how long it waits first, and when it gives up.

Only transient failures are tried again (``LLMUnavailable.transient``: 429, 408/409, 5xx,
timeouts, refused connections); a rejected request or an open breaker ends the call at once.
The wait is the provider's ``Retry-After`` when it sent one (capped by
``retry_after_max_s``), else exponential backoff with full jitter, so replicas do not retry in
step. Attempts are bounded, and so is the whole call: each attempt gets at most the time left
before ``max_total_s``, and no wait is started that would end past it; the error that ends a
call keeps the provider's hint (``retry_after_s``) so the caller can schedule a later turn.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from ai_agent.llm import LLMUnavailable
from libs.retry_after import parse_retry_after

log = structlog.get_logger(__name__)

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
Attempt = Callable[[float], Awaitable[T]]
"""One try of the call, given the seconds it may take at most."""


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same call again soon may succeed."""
    return isinstance(exc, LLMUnavailable) and exc.transient


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The wait a provider asked for: ``retry-after-ms``, or ``retry-after`` (seconds or date)."""
    if not headers:
        return None
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    return parse_retry_after(headers.get("retry-after"))


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    # NaN compares unequal to itself; neither it nor a negative wait is a usable hint.
    if seconds is None or seconds != seconds or seconds < 0:
        return None
    return seconds


class _WaitsExceed(stop_base):
    """Stop when the waits so far plus the next would reach ``budget_s``.

    Beside ``stop_before_delay`` (wall clock) so that the bound holds with an injected
    ``sleep`` that does not really wait.
    """

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.idle_for + retry_state.upcoming_sleep >= self.budget_s


@dataclass(frozen=True, slots=True)
class CompletionRetryPolicy:
    """Bounded retries of one chat model call.

    ``sleep`` is injectable so that tests can note the waits asked for; ``on_exhausted`` is
    told about the error a call ends with once retrying stopped helping.
    """

    max_attempts: int = 4
    max_total_s: float = 90.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 20.0
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    on_exhausted: Callable[[LLMUnavailable], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if min(self.max_total_s, self.backoff_initial_s, self.retry_after_max_s) <= 0:
            raise ValueError("max_total_s, backoff_initial_s and retry_after_max_s must be > 0")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")

    async def run(self, attempt: Attempt[T]) -> T:
        """Await ``attempt(seconds_left)`` until it succeeds, fails for good, or time runs out."""
        backoff = wait_random_exponential(multiplier=self.backoff_initial_s, max=self.backoff_max_s)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            hint = error.retry_after_s if isinstance(error, LLMUnavailable) else None
            return min(hint, self.retry_after_max_s) if hint is not None else backoff(state)

        retrying = AsyncRetrying(
            stop=stop_any(
                stop_after_attempt(self.max_attempts),
                stop_before_delay(self.max_total_s),
                _WaitsExceed(self.max_total_s),
            ),
            wait=wait,
            retry=retry_if_exception(is_transient),
            sleep=self.sleep,
            reraise=True,
        )
        started = time.monotonic()
        attempts = 0

        async def counted() -> T:
            nonlocal attempts
            attempts += 1
            left_s = self.max_total_s - (time.monotonic() - started)
            if left_s <= 0:
                raise LLMUnavailable(
                    f"the call's {self.max_total_s}s were used up before attempt {attempts}",
                    transient=False,
                )
            return await attempt(left_s)

        try:
            return await retrying(counted)
        except LLMUnavailable as exc:
            exc.attempts = attempts
            if attempts > 1 or exc.transient:
                raise self._exhausted(exc, time.monotonic() - started) from exc
            raise

    def _exhausted(self, last: LLMUnavailable, elapsed_s: float) -> LLMUnavailable:
        """The error that ends the call once retrying stopped helping, its attempts told."""
        tries = "1 attempt" if last.attempts == 1 else f"{last.attempts} attempts"
        error = LLMUnavailable(
            f"{last}; gave up after {tries} in {elapsed_s:.1f}s",
            transient=last.transient,
            status=last.status,
            retry_after_s=last.retry_after_s,
        )
        error.attempts = last.attempts
        log.warning(
            "chat model call gave up",
            error=str(last),
            attempts=last.attempts,
            elapsed_s=round(elapsed_s, 3),
        )
        if self.on_exhausted is not None:
            self.on_exhausted(error)
        return error
