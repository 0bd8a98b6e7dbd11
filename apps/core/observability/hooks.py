"""Celery's task signals, connected once from `CoreConfig.ready()`.

Run time and failures per task, the task id in the log context (`supportai.logging`), and the
worker-side metrics exporter (`WORKER_METRICS_PORT`). No business flow runs here.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import signals
from django.conf import settings

from apps.core.observability import metrics
from apps.core.observability.exporter import start_exporter
from supportai.logging import connect_celery_signals

_started: dict[str, float] = {}
_connected = False


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
    start_exporter(port=port, addr=settings.WORKER_METRICS_ADDR, token=settings.METRICS_TOKEN or "")


def _worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    metrics.mark_process_dead(pid or os.getpid())


def connect() -> None:
    global _connected
    if _connected:
        return
    _connected = True
    connect_celery_signals()
    signals.task_prerun.connect(_task_prerun, weak=False, dispatch_uid="observability.prerun")
    signals.task_postrun.connect(_task_postrun, weak=False, dispatch_uid="observability.postrun")
    signals.task_failure.connect(_task_failure, weak=False, dispatch_uid="observability.failure")
    signals.worker_ready.connect(_worker_ready, weak=False, dispatch_uid="observability.exporter")
    signals.worker_process_shutdown.connect(
        _worker_process_shutdown, weak=False, dispatch_uid="observability.process_shutdown"
    )
