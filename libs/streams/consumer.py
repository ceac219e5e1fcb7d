"""Declaring a consumer: which streams, which group, which handler, and its knobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from libs.streams.received import Received
from libs.streams.retry import RetryPolicy

if TYPE_CHECKING:
    from libs.resources import Resources

Handler = Callable[[Received], Awaitable[None]]
HandlerFactory = Callable[["Resources"], Handler]

_NAME_PATTERN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True, slots=True)
class Consumer:
    """A consumer group on one or more logical streams, declared once in ``consumers/``.

    ``handler_factory`` receives the process's resources (clients, publisher, settings) and
    returns the handler, so handlers get their dependencies passed in, never looked up. A
    handler object may also have ``run_background(stopping: asyncio.Event)``, a coroutine the
    runner runs beside its reads until ``stopping`` is set, and ``aclose()``.
    ``accepts`` maps event types to the versions this consumer reads; entries of other types
    on its streams are acknowledged and skipped, and a known type at an unknown version is
    dead-lettered (the consumer must be upgraded, then the entry redriven). ``None`` reads
    every registered type. ``retry`` replaces the settings' policy (deliveries, backoff and a
    hook run once an entry is dead-lettered). Knobs left ``None`` take the process settings.
    """

    name: str
    streams: tuple[str, ...]
    handler_factory: HandlerFactory
    group: str | None = None
    accepts: Mapping[str, frozenset[int]] | None = None
    concurrency: int | None = None
    batch_size: int | None = None
    max_deliveries: int | None = None
    claim_idle_ms: int | None = None
    handler_timeout_s: float | None = None
    retry: RetryPolicy | None = None
    start_id: str = "0"
    tags: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.name or not set(self.name) <= _NAME_PATTERN_CHARS:
            raise ValueError(
                f"consumer name {self.name!r} must be lowercase letters, digits, '-', '_', '.'"
            )
        if not self.streams:
            raise ValueError(f"consumer {self.name!r} reads no stream")
        for knob in ("concurrency", "batch_size", "max_deliveries", "claim_idle_ms"):
            value = getattr(self, knob)
            if value is not None and value < 1:
                raise ValueError(f"consumer {self.name!r}: {knob} must be positive, got {value}")
        if self.handler_timeout_s is not None and self.handler_timeout_s <= 0:
            raise ValueError(f"consumer {self.name!r}: handler_timeout_s must be positive")
        if self.start_id not in ("0", "$"):
            raise ValueError(f"consumer {self.name!r}: start_id must be '0' or '$'")

    @property
    def group_name(self) -> str:
        """The Redis consumer group (defaults to the consumer's name)."""
        return self.group or self.name

    def reads(self, event_type: str) -> bool:
        """Whether entries of ``event_type`` are meant for this consumer."""
        return self.accepts is None or event_type in self.accepts

    def reads_version(self, event_type: str, version: int) -> bool:
        """Whether this consumer understands ``event_type`` at ``version``."""
        return self.accepts is None or version in self.accepts.get(event_type, frozenset())
