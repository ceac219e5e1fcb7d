"""A consumer's knobs resolved against the process settings, checked once."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

from libs.settings import Settings
from libs.streams.consumer import Consumer
from libs.streams.retry import ExponentialBackoff, RetryPolicy


def consumer_instance_name() -> str:
    """A name unique to this process among a group's consumers: host, pid and a nonce."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """Everything a running consumer needs to know about how to behave."""

    group: str
    consumer_name: str
    partitions: int
    concurrency: int
    batch_size: int
    block_ms: int
    claim_idle_ms: int
    retry: RetryPolicy
    handler_timeout_s: float | None
    shutdown_grace_s: float
    dead_letter_maxlen: int
    stats_interval_s: float
    consumer_prune_idle_ms: int = 3_600_000
    start_id: str = "0"

    def __post_init__(self) -> None:
        if self.retry.backoff.max_ms >= self.claim_idle_ms:
            raise ValueError(
                f"group {self.group!r}: the longest backoff ({self.retry.backoff.max_ms} ms) "
                f"must be shorter than claim_idle_ms ({self.claim_idle_ms} ms), or other "
                "consumers reclaim entries that are only waiting to be retried"
            )

    @classmethod
    def for_consumer(
        cls, consumer: Consumer, settings: Settings, consumer_name: str | None = None
    ) -> RunnerConfig:
        """Resolve ``consumer``'s knobs, taking ``settings`` where it sets none."""
        return cls(
            group=consumer.group_name,
            consumer_name=consumer_name or consumer_instance_name(),
            partitions=settings.stream_partitions,
            concurrency=consumer.concurrency or settings.concurrency,
            batch_size=consumer.batch_size or settings.batch_size,
            block_ms=settings.block_ms,
            claim_idle_ms=consumer.claim_idle_ms or settings.claim_idle_ms,
            retry=consumer.retry
            or RetryPolicy(
                max_deliveries=consumer.max_deliveries or settings.max_deliveries,
                backoff=ExponentialBackoff(settings.retry_base_ms, settings.retry_max_ms),
            ),
            handler_timeout_s=consumer.handler_timeout_s,
            shutdown_grace_s=settings.shutdown_grace_s,
            dead_letter_maxlen=settings.dead_letter_maxlen,
            stats_interval_s=settings.stream_stats_interval_s,
            consumer_prune_idle_ms=int(settings.consumer_prune_idle_s * 1000),
            start_id=consumer.start_id,
        )
