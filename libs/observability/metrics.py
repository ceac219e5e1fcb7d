"""Every Prometheus metric atende exports, declared once, named as in DESIGN.md.

Label values are low-cardinality by rule: stream, group, partition, lock kind, breaker name,
model, agent profile — never a tenant, conversation or event id.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from libs.observability.consumer_metrics import ConsumerMetrics

_LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)

EVENTS_PUBLISHED = Counter("events_published_total", "Events appended to a stream.", ["stream"])
# Updated on every event: counted without locks, see consumer_metrics.
CONSUMER_METRICS = ConsumerMetrics(_LATENCY_BUCKETS_S)
REGISTRY.register(CONSUMER_METRICS)
DEAD_LETTERS = Counter(
    "events_dead_lettered_total", "Entries moved to a dead-letter stream.", ["stream", "group"]
)
STREAM_LAG = Gauge(
    "stream_lag", "Entries not yet delivered to the group.", ["stream", "group", "partition"]
)
STREAM_PENDING = Gauge(
    "stream_pending",
    "Entries delivered to the group but not acknowledged.",
    ["stream", "group", "partition"],
)
STREAM_LENGTH = Gauge("stream_length", "Entries in a stream partition.", ["stream", "partition"])
STREAM_TRIMMED = Counter(
    "stream_entries_trimmed_total",
    "Entries removed after every group acknowledged or dead-lettered them.",
    ["stream"],
)
STREAM_ENTRIES_LOST = Counter(
    "stream_entries_lost_total",
    "Pending entries found gone from their stream when reclaimed (never handled).",
    ["stream", "group"],
)
STREAM_CONSUMERS_PRUNED = Counter(
    "stream_consumers_pruned_total",
    "Consumers removed from a group after idling with nothing pending.",
    ["stream", "group"],
)
INGRESS_BACKLOG_FULL = Counter(
    "ingress_backlog_full_total",
    "Inbound events the ingress refused (503) because their partition was at capacity.",
    ["stream", "partition"],
)
CONSUMER_RECONNECTS = Counter(
    "stream_consumer_reconnects_total", "Read loops that lost Redis and reconnected.", ["stream"]
)
CONSUMER_GROUPS_HEALED = Counter(
    "stream_groups_healed_total", "Consumer groups recreated after NOGROUP.", ["stream", "group"]
)

TYPING_INDICATORS = Counter(
    "typing_indicators_total",
    "Typing indicators by outcome: sent, failed (logged, never retried), skipped (turn closed).",
    ["channel", "outcome"],
)

LOCKS_ACQUIRED = Counter("locks_acquired_total", "Leases acquired.", ["lock"])
LOCKS_FAILED = Counter("locks_failed_total", "Lease attempts that found a holder.", ["lock"])
LOCKS_DURATION = Histogram(
    "locks_duration_seconds",
    "How long a lease was held, from acquire to release.",
    ["lock"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

CIRCUIT_BREAKER_STATE = Gauge(
    "circuit_breaker_state", "0 closed, 1 half-open, 2 open.", ["breaker"]
)
CIRCUIT_BREAKER_FAILURES = Counter(
    "circuit_breaker_failures_total", "Failures counted by a circuit breaker.", ["breaker"]
)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests served.", ["route", "method", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency.",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS_S,
)

AI_REQUESTS = Counter(
    "ai_requests_total",
    "Chat model calls by outcome: success, rejected, unavailable, circuit_open.",
    ["model", "profile", "outcome"],
)
AI_TOKENS_USED = Counter(
    "ai_tokens_used_total",
    "Tokens the chat model reported using, by kind: prompt or completion.",
    ["model", "profile", "kind"],
)
AI_REQUEST_DURATION = Histogram(
    "ai_request_duration_seconds",
    "How long a chat model call took, its retries and their waits included.",
    ["model", "profile"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)

DELIVERY_STATUSES = Counter(
    "delivery_statuses_total",
    "Provider delivery statuses by outcome: applied, stale (late, repeated or after failed), "
    "unknown (no outbound message of ours has the provider id).",
    ["status", "outcome"],
)
