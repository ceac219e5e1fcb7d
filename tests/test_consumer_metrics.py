"""The lock-free consumer metrics expose what prometheus_client's own types would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram

from libs.observability.consumer_metrics import OUTCOMES, ConsumerMetrics

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_same_samples_as_prometheus_client_counter_and_histogram() -> None:
    reference, ours = CollectorRegistry(), CollectorRegistry()
    consumed = Counter("events_consumed", "x", ["stream", "group", "outcome"], registry=reference)
    duration = Histogram(
        "events_processing_duration_seconds", "x", ["stream", "group"], buckets=BUCKETS,
        registry=reference,
    )  # fmt: skip
    metrics = ConsumerMetrics(BUCKETS)
    ours.register(metrics)
    rnd = random.Random(7)
    values = [*BUCKETS, 0.0, 5.0] + [rnd.uniform(0, 2) for _ in range(500)]
    for index, seconds in enumerate(values):
        stream = f"s{index % 2}"
        outcome = OUTCOMES[index % len(OUTCOMES)]
        metrics.tally(stream, "g").record(outcome, seconds)
        consumed.labels(stream, "g", outcome).inc()
        duration.labels(stream, "g").observe(seconds)
    expected, actual = _samples(reference), _samples(ours)
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] == value or abs(actual[key] - value) < 1e-9, key
