"""When to try a send again, and how long to wait before it.

Only ``RateLimited`` and ``ProviderUnavailable`` are tried again; a permanent error, bad
credentials or an open breaker end the send at once. The wait is the provider's hint when it
gave one (``Retry-After``, Telegram's ``retry_after``), else exponential backoff with full
jitter so that replicas do not retry in step. Attempts and total time are both bounded; a
hint that would overrun the time budget ends the send and reaches the caller in
``retry_after_s``, so delivery can reschedule instead of holding a worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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

from channels.sending_errors import ProviderUnavailable, RateLimited, SendError

log = structlog.get_logger(__name__)

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
ExhaustedHook = Callable[[SendError], None]


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same request again soon may succeed."""
    return isinstance(exc, RateLimited | ProviderUnavailable)


class _WaitsExceed(stop_base):
    """Stop when the waits asked for so far, plus the next, would reach ``budget_s``.

    Alongside ``stop_before_delay`` (wall clock), so the bound holds even when an injected
    ``sleep`` returns early.
    """

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.idle_for + retry_state.upcoming_sleep >= self.budget_s


@dataclass(frozen=True, slots=True)
class SendRetryPolicy:
    """Bounded retries of one provider request.

    ``sleep`` is injectable so tests can record the waits instead of timing them;
    ``on_exhausted`` is told about the error that ends a send once retrying no longer helps
    (attempts or time used up, or an error that came after retries).
    """

    max_attempts: int = 4
    max_total_s: float = 30.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    on_exhausted: ExhaustedHook | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.max_total_s <= 0 or self.backoff_initial_s <= 0:
            raise ValueError("max_total_s and backoff_initial_s must be positive")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Await ``attempt()`` until it succeeds, fails for good, or the budget runs out."""
        backoff = wait_random_exponential(multiplier=self.backoff_initial_s, max=self.backoff_max_s)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            hint = getattr(error, "retry_after_s", None)
            return float(hint) if hint is not None else backoff(state)

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
        attempts = 0
        started = time.monotonic()

        async def counted() -> T:
            nonlocal attempts
            attempts += 1
            return await attempt()

        try:
            return await retrying(counted)
        except SendError as exc:
            exc.attempts = attempts
            if attempts > 1 or is_transient(exc):
                self._exhausted(exc, time.monotonic() - started)
            raise

    def _exhausted(self, error: SendError, elapsed_s: float) -> None:
        log.warning(
            "outbound send gave up",
            error=str(error),
            attempts=error.attempts,
            elapsed_s=round(elapsed_s, 3),
            retry_after_s=error.retry_after_s,
        )
        if self.on_exhausted is not None:
            self.on_exhausted(error)
