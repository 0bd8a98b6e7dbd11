"""The actions' Prometheus series (exposed by /metrics with every other series).

Labels are bounded: the call's status and the outcome kind come from fixed sets; action names
are the tenants' own words and are not labels.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

STATUSES = frozenset({"succeeded", "failed", "refused", "declined"})
KINDS = frozenset(
    {
        "succeeded",
        "not_found",
        "refused",
        "refused_address",
        "timeout",
        "connection",
        "http_error",
        "too_large",
        "bad_response",
        "bad_request",
        "declined",
    }
)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

ACTION_CALLS = Counter(
    "supportai_action_calls",
    "Action calls (HTTP calls into a company's systems), by status and outcome.",
    ["status", "outcome"],
)
ACTION_SECONDS = Histogram(
    "supportai_action_call_seconds",
    "Time one action's HTTP call took.",
    buckets=LATENCY_BUCKETS,
)


def observe(*, status: str, kind: str, latency_ms: int | None = None) -> None:
    ACTION_CALLS.labels(
        status=status if status in STATUSES else "other",
        outcome=kind if kind in KINDS else "other",
    ).inc()
    if latency_ms is not None and status != "refused":
        ACTION_SECONDS.observe(latency_ms / 1000)
