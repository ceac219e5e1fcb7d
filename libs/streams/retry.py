"""Backoff and retry policies for handlers and for reconnecting to Redis."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from libs.streams.received import Received


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """``base_ms * 2**(attempt-1)``, capped at ``max_ms``, with "equal jitter".

    Half the delay is fixed and half random, so retries spread out but never fire at once.
    """

    base_ms: int = 500
    max_ms: int = 30_000

    def __post_init__(self) -> None:
        if not 0 < self.base_ms <= self.max_ms:
            raise ValueError(f"need 0 < base_ms <= max_ms, got {self.base_ms} and {self.max_ms}")

    def delay_ms(self, attempt: int) -> int:
        """Delay before delivery ``attempt + 1``, given that ``attempt`` (≥ 1) failed."""
        ceiling = min(self.max_ms, self.base_ms * (1 << min(max(attempt, 1) - 1, 30)))
        half = ceiling / 2
        return int(half + random.uniform(0, half))


ExhaustedHook = Callable[["Received", BaseException], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often an entry is delivered before it is given up, and how long to wait between.

    ``on_exhausted`` runs after the entry was dead-lettered (e.g. to hand the conversation to a
    human); its own failure is logged and never blocks the dead-letter move.
    """

    max_deliveries: int = 5
    backoff: ExponentialBackoff = field(default_factory=ExponentialBackoff)
    on_exhausted: ExhaustedHook | None = None

    def __post_init__(self) -> None:
        if self.max_deliveries < 1:
            raise ValueError(f"max_deliveries must be at least 1, got {self.max_deliveries}")

    def exhausted(self, attempt: int) -> bool:
        """Whether delivery ``attempt`` was the last one allowed."""
        return attempt >= self.max_deliveries
