"""``events_consumed_total`` and ``events_processing_duration_seconds``, counted without locks.

They change on every event. prometheus_client takes a lock for each counter and histogram
update; the stream runtime updates them from one event-loop thread, so plain integers do, and
this collector turns them into the same metric families when Prometheus scrapes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

OUTCOMES = ("ok", "retry", "dead_letter", "dropped", "skipped")


class ConsumerTally:
    """Outcomes and handling times of one (stream, group)."""

    __slots__ = ("_bounds", "bucket_counts", "outcomes", "seconds_sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = bounds
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.bucket_counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.seconds_sum = 0.0

    def record(self, outcome: str, seconds: float) -> None:
        """Count one handled entry."""
        self.outcomes[outcome] += 1
        self.bucket_counts[bisect_left(self._bounds, seconds)] += 1
        self.seconds_sum += seconds


class ConsumerMetrics(Collector):
    """The tallies of every consumer in the process, exposed as two metric families."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self._bounds = tuple(sorted(buckets))
        self._tallies: dict[tuple[str, str], ConsumerTally] = {}

    def tally(self, stream: str, group: str) -> ConsumerTally:
        """The tally of ``stream`` read by ``group`` (made on first use, then shared)."""
        key = (stream, group)
        if key not in self._tallies:
            self._tallies[key] = ConsumerTally(self._bounds)
        return self._tallies[key]

    def collect(self) -> Iterator[Metric]:
        """Build the families from the tallies (called by the registry at scrape time)."""
        consumed = CounterMetricFamily(
            "events_consumed",
            "Stream entries handled by a consumer group, by outcome.",
            labels=["stream", "group", "outcome"],
        )
        duration = HistogramMetricFamily(
            "events_processing_duration_seconds",
            "Time a handler took for one event.",
            labels=["stream", "group"],
        )
        for (stream, group), tally in list(self._tallies.items()):
            for outcome, count in tally.outcomes.items():
                consumed.add_metric([stream, group, outcome], count)
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*self._bounds, float("inf")), tally.bucket_counts, strict=True
            ):
                cumulative += count
                buckets.append((_bound_label(bound), cumulative))
            duration.add_metric([stream, group], buckets, tally.seconds_sum)
        yield consumed
        yield duration


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
