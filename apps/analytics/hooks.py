"""Infrastructure hooks, connected once from `AnalyticsConfig.ready()`.

- the events fan-out: every dispatched event is counted in Prometheus, and days that received
  feedback or outcomes are queued for a fresh roll-up (late feedback on yesterday's answers);
- Celery's task signals: run time and failures per task, the task id in the log context, and
  the worker-side metrics exporter (`WORKER_METRICS_PORT`).

No business flow runs here: the roll-ups read the database, which stays the record.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apps.analytics import metrics

logger = logging.getLogger(__name__)

_started: dict[str, float] = {}
_connected = False

# Events after which a tenant's roll-up of the day is worth refreshing.
_ROLLUP_EVENTS = frozenset({"conversation.resolved", "feedback.received", "handoff.requested"})
# At most one refresh per tenant and day in this many seconds.
ROLLUP_DEBOUNCE_SECONDS = 300


def event_ingest(event: Any) -> None:
    """Events fan-out handler: count the event; queue today's roll-up of its tenant (debounced)."""
    metrics.event_dispatched(str(event.type))
    if event.type not in _ROLLUP_EVENTS:
        return
    day = timezone.localdate(event.created_at)
    key = f"analytics:rollup-queued:{event.tenant_id}:{day.isoformat()}"
    if cache.add(key, 1, timeout=ROLLUP_DEBOUNCE_SECONDS):
        from apps.analytics.tasks import rollup_day

        rollup_day.apply_async(
            kwargs={"tenant_id": event.tenant_id, "day": day.isoformat()},
            countdown=ROLLUP_DEBOUNCE_SECONDS,
        )


def _task_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


def _task_postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    started = _started.pop(task_id, None) if task_id else None
    if started is not None:
        metrics.task_finished(
            name=getattr(task, "name", None),
            seconds=time.perf_counter() - started,
            state=state or "unknown",
        )


def _task_failure(sender: Any = None, **_: Any) -> None:
    metrics.task_failed(name=getattr(sender, "name", None))


def _worker_ready(**_: Any) -> None:
    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    from apps.analytics.exporter import start_exporter

    start_exporter(port=port, addr=settings.WORKER_METRICS_ADDR, token=settings.METRICS_TOKEN or "")


def _worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    metrics.mark_process_dead(pid or os.getpid())


def connect() -> None:
    global _connected
    if _connected:
        return
    _connected = True

    from celery import signals

    from apps.events import fanout
    from supportai.logging import connect_celery_signals

    fanout.register(event_ingest)
    connect_celery_signals()
    signals.task_prerun.connect(_task_prerun, weak=False, dispatch_uid="analytics.prerun")
    signals.task_postrun.connect(_task_postrun, weak=False, dispatch_uid="analytics.postrun")
    signals.task_failure.connect(_task_failure, weak=False, dispatch_uid="analytics.failure")
    signals.worker_ready.connect(_worker_ready, weak=False, dispatch_uid="analytics.exporter")
    signals.worker_process_shutdown.connect(
        _worker_process_shutdown, weak=False, dispatch_uid="analytics.process_shutdown"
    )
