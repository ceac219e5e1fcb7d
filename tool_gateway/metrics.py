"""The gateway's Prometheus metrics, named like those of ``libs.observability.metrics``.

Labels stay low-cardinality: ``tool`` is a registered tool's name, or ``unregistered`` for a
name the LLM made up; never a tenant or a call id.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

UNREGISTERED = "unregistered"

TOOL_CALLS = Counter(
    "tool_calls_total",
    "Tool calls answered by the gateway, by outcome (replayed: from a stored answer).",
    ["tool", "outcome"],
)
TOOL_CALL_DURATION = Histogram(
    "tool_call_duration_seconds",
    "Time the gateway spent on a call, checks and storage included.",
    ["tool"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
