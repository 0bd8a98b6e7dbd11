"""Prometheus metrics of SupportAI, and the small functions the rest of the code calls.

Labels are bounded on purpose: no tenant, conversation or message ids (one time series per
conversation would grow without end). Decisions, error kinds, event types and Celery task names
come from fixed sets; anything else is counted as "other".

Processes: the web process and each Celery worker process keep their own values. With
`PROMETHEUS_MULTIPROC_DIR` set (before the process starts) prometheus_client writes them to
files there and `registry()` adds them up, so `/metrics` (or the worker exporter, see
`exporter.py` beside this module) reports every process of the host. docs/analytics.md has
details.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection
from typing import Any

import httpx
import openai
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.registry import REGISTRY

# Seconds, from a fast cache hit to a slow CPU model.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TASK_BUCKETS = (0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0)
TOKENS_PER_SECOND_BUCKETS = (1, 2, 5, 10, 20, 40, 80, 160, 320)

DECISIONS = frozenset({"answer", "clarify", "handoff", "extractive", "decline"})
# What the answer engine did with an answer (`Message.grounding["outcome"]`); the same set as
# apps.conversations.selectors.GROUNDING_OUTCOMES, spelled out so this module imports no app.
ANSWER_OUTCOMES = frozenset(
    {
        "grounded",
        "fell_back",
        "extractive",
        "generative",
        "declined",
        "chitchat",
        "handoff",
        "action",
    }
)
ANSWERABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LLM_ERROR_KINDS = frozenset({"timeout", "connection", "server", "bad_response", "other"})

RETRIEVAL_SECONDS = Histogram(
    "supportai_retrieval_seconds",
    "Time to retrieve knowledge for one question.",
    buckets=LATENCY_BUCKETS,
)
FIRST_TOKEN_SECONDS = Histogram(
    "supportai_first_token_seconds",
    "Time from the customer's message to the first streamed token of the answer.",
    buckets=LATENCY_BUCKETS,
)
ANSWER_SECONDS = Histogram(
    "supportai_answer_seconds",
    "Time from the customer's message to the complete answer.",
    ["decision"],
    buckets=LATENCY_BUCKETS,
)
TOKENS_PER_SECOND = Histogram(
    "supportai_answer_tokens_per_second",
    "Completion tokens per second while an answer streamed (after the first token).",
    buckets=TOKENS_PER_SECOND_BUCKETS,
)
COMPLETION_TOKENS = Counter(
    "supportai_completion_tokens", "Completion tokens generated for answers."
)
PROMPT_TOKENS = Counter("supportai_prompt_tokens", "Prompt tokens sent for answers.")
ANSWERS = Counter("supportai_answers", "Assistant answers, by decision.", ["decision"])
ANSWER_OUTCOME_COUNT = Counter(
    "supportai_assistant_answers",
    "Assistant answers, by what the answer engine did: grounded, fell_back (to the extractive "
    "answer), extractive, generative, declined, chitchat, handoff; other when none was recorded.",
    ["outcome"],
)
ANSWERABILITY = Histogram(
    "supportai_answerability",
    "Answerability (0-1) the answer engine gave each answer it scored.",
    buckets=ANSWERABILITY_BUCKETS,
)
LLM_ERRORS = Counter(
    "supportai_llm_errors",
    "Calls to the language model that failed, by kind (timeout, connection, server, ...).",
    ["kind"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "supportai_websocket_connections",
    "Open chat websocket connections.",
    multiprocess_mode="livesum",
)
EVENTS = Counter("supportai_events", "Domain events dispatched, by type.", ["type"])
DRIFT_ALERTS = Counter("supportai_drift_alerts", "Drift alerts recorded, by kind.", ["kind"])
# Action calls (apps.actions): HTTP calls into a company's systems. Status and outcome kind come
# from fixed sets; action names are the tenants' own words and are not labels.
ACTION_STATUSES = frozenset({"succeeded", "failed", "refused", "declined"})
ACTION_KINDS = frozenset(
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
ACTION_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ACTION_CALLS = Counter(
    "supportai_action_calls",
    "Action calls (HTTP calls into a company's systems), by status and outcome.",
    ["status", "outcome"],
)
ACTION_SECONDS = Histogram(
    "supportai_action_call_seconds",
    "Time one action's HTTP call took.",
    buckets=ACTION_LATENCY_BUCKETS,
)
CELERY_TASK_SECONDS = Histogram(
    "supportai_celery_task_seconds",
    "Run time of Celery tasks, by task name and outcome.",
    ["task", "state"],
    buckets=TASK_BUCKETS,
)
CELERY_TASK_FAILURES = Counter(
    "supportai_celery_task_failures", "Celery tasks that raised, by task name.", ["task"]
)


def _decision(value: str | None) -> str:
    return value if value in DECISIONS else "other"


def _outcome(value: Any) -> str:
    return value if isinstance(value, str) and value in ANSWER_OUTCOMES else "other"


def _seconds(ms: float | None) -> float | None:
    if ms is None:
        return None
    return max(0.0, float(ms)) / 1000.0


# --- What the chat path calls ---------------------------------------------------------------------


def observe_retrieval(*, retrieval_ms: float) -> None:
    """One retrieval finished (call it even when the answer then fails)."""
    RETRIEVAL_SECONDS.observe(_seconds(retrieval_ms) or 0.0)


def observe_answer(
    *,
    retrieval_ms: float | None,
    first_token_ms: float | None,
    total_ms: float | None,
    completion_tokens: int | None,
    decision: str | None,
    prompt_tokens: int | None = None,
    observe_retrieval_time: bool = True,
) -> None:
    """One assistant answer finished: its latencies (ms, as stored on the message) and tokens.

    Pass `observe_retrieval_time=False` if `observe_retrieval()` was already called for it.
    """
    decision = _decision(decision)
    ANSWERS.labels(decision=decision).inc()
    if observe_retrieval_time and retrieval_ms is not None:
        RETRIEVAL_SECONDS.observe(_seconds(retrieval_ms) or 0.0)
    if first_token_ms is not None:
        FIRST_TOKEN_SECONDS.observe(_seconds(first_token_ms) or 0.0)
    if total_ms is not None:
        ANSWER_SECONDS.labels(decision=decision).observe(_seconds(total_ms) or 0.0)
    if completion_tokens:
        COMPLETION_TOKENS.inc(completion_tokens)
        if first_token_ms is not None and total_ms is not None and total_ms > first_token_ms:
            streaming_seconds = (total_ms - first_token_ms) / 1000.0
            TOKENS_PER_SECOND.observe(completion_tokens / streaming_seconds)
    if prompt_tokens:
        PROMPT_TOKENS.inc(prompt_tokens)


def observe_answer_message(message: Any) -> None:
    """`observe_answer` from a finished assistant `Message` (what the chat path just stored),
    plus the answer engine's outcome and answerability."""
    observe_answer(
        retrieval_ms=message.retrieval_ms,
        first_token_ms=message.first_token_ms,
        total_ms=message.total_ms,
        completion_tokens=message.completion_tokens,
        prompt_tokens=message.prompt_tokens,
        decision=message.decision,
    )
    grounding = getattr(message, "grounding", None)
    observe_answer_outcome(
        outcome=grounding.get("outcome") if isinstance(grounding, dict) else None,
        answerability=getattr(message, "answerability", None),
    )


def observe_answer_outcome(*, outcome: str | None, answerability: float | None) -> None:
    """Count one answer by its grounding outcome (unknown or missing: "other") and observe its
    answerability when it has one."""
    ANSWER_OUTCOME_COUNT.labels(outcome=_outcome(outcome)).inc()
    if answerability is not None:
        ANSWERABILITY.observe(min(1.0, max(0.0, float(answerability))))


def llm_error(kind: str) -> None:
    """A language-model call failed: kind is timeout, connection, server, bad_response or other."""
    LLM_ERRORS.labels(kind=kind if kind in LLM_ERROR_KINDS else "other").inc()


def llm_error_from_exception(exc: BaseException) -> str:
    """Classify and count an exception from the OpenAI client; returns the kind counted."""
    kind = classify_llm_error(exc)
    llm_error(kind)
    return kind


def classify_llm_error(exc: BaseException) -> str:
    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError | ConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        return "server" if exc.status_code >= 500 else "bad_response"
    if isinstance(exc, ValueError):
        return "bad_response"
    return "other"


def ws_connected() -> None:
    WEBSOCKET_CONNECTIONS.inc()


def ws_disconnected() -> None:
    WEBSOCKET_CONNECTIONS.dec()


def event_dispatched(event_type: str, *, known: Collection[str]) -> None:
    """Count one dispatched event; `known` is the fixed set of event types (else "other")."""
    EVENTS.labels(type=event_type if event_type in known else "other").inc()


def drift_alert_recorded(kind: str) -> None:
    DRIFT_ALERTS.labels(kind=kind).inc()


def action_call_observed(*, status: str, kind: str, latency_ms: int | None = None) -> None:
    """One action call ended (apps.actions): its status, outcome kind and HTTP latency."""
    ACTION_CALLS.labels(
        status=status if status in ACTION_STATUSES else "other",
        outcome=kind if kind in ACTION_KINDS else "other",
    ).inc()
    if latency_ms is not None and status != "refused":
        ACTION_SECONDS.observe(latency_ms / 1000)


# --- Celery tasks ---------------------------------------------------------------------------------


def _task_label(name: str | None) -> str:
    # Only our own task names (a bounded, registered set); anything else is "other".
    if name and name.startswith(("apps.", "workers.")) and len(name) <= 120:
        return name
    return "other"


def task_finished(*, name: str | None, seconds: float, state: str) -> None:
    CELERY_TASK_SECONDS.labels(task=_task_label(name), state=state.lower()).observe(seconds)


def task_failed(*, name: str | None) -> None:
    CELERY_TASK_FAILURES.labels(task=_task_label(name)).inc()


# --- Exposition -----------------------------------------------------------------------------------


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def registry() -> Any:
    """What to expose: every process's values in multiprocess mode, else this process's."""
    if multiprocess_dir():
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return REGISTRY


def mark_process_dead(pid: int) -> None:
    """A worker child exited: drop its live gauges (multiprocess mode only)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
