"""Readiness checks, one per component. Each answers within its own timeout.

The report names components only: it never carries tenant data, so it is safe to expose to a
load balancer. A component that has not had time to come up since this process started (the
workers, until beat's first heartbeat) is "starting" rather than failed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import qdrant_edge  # noqa: F401  (the embedded engine must be importable where it is the store)
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.models import WorkerHeartbeat

CHECK_TIMEOUT = 2.0
# The edge store's collection names (apps/knowledge/vectorstore/base.py validate_name).
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# When this process started (set again by CoreConfig.ready()); the workers get one heartbeat
# interval from then before their silence counts as a failure.
_process_started = time.monotonic()


def mark_process_started() -> None:
    global _process_started
    _process_started = time.monotonic()


def seconds_since_start() -> float:
    return time.monotonic() - _process_started


class Starting(Exception):
    """The component is not up yet, and still has time to come up."""


@dataclass
class ComponentStatus:
    ok: bool
    required: bool
    detail: str
    latency_ms: float = 0.0
    starting: bool = False


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_redis() -> str:
    if not settings.REDIS_URL:
        return "not configured: in-process cache and channel layer"

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ping ok"


def check_qdrant() -> str:
    if settings.QDRANT_URL:
        headers = {"api-key": settings.QDRANT_API_KEY} if settings.QDRANT_API_KEY else {}
        response = httpx.get(
            settings.QDRANT_URL.rstrip("/") + "/readyz", headers=headers, timeout=CHECK_TIMEOUT
        )
        response.raise_for_status()
        return "server ready"
    path = settings.QDRANT_PATH
    path.mkdir(parents=True, exist_ok=True)
    probe = path / ".ready-probe"
    probe.write_text("ok")
    probe.unlink()
    if settings.QDRANT_LOCAL_ENGINE == "client":
        # qdrant-client's local mode opens under an exclusive file lock for each call (see
        # apps/knowledge/runtime.py); a lock nobody gives back means no search can run here.
        _embedded_lock_free(path / "client.lock", timeout=CHECK_TIMEOUT / 2)
    else:
        # The edge engine leases each collection's shard under a file lock, which a healthy
        # holder (a lingering worker, or this process) hands over when asked through the
        # `.want` file (apps/knowledge/vectorstore/edge.py). Ask for the serving collection as
        # a search would: a holder that never lets go means no search can run here.
        serving = _edge_serving_collection(path)
        if serving and (path / "locks" / f"{serving}.lock").exists():
            _embedded_lock_free(
                path / "locks" / f"{serving}.lock",
                timeout=CHECK_TIMEOUT / 2,
                want_path=path / "locks" / f"{serving}.want",
            )
    return "embedded engine, storage writable"


def _edge_serving_collection(path: Path) -> str | None:
    """The collection the alias serves in an edge store at `path` (the alias file's layout)."""
    aliases_path = path / "aliases.json"
    aliases = json.loads(aliases_path.read_text()) if aliases_path.exists() else {}
    name = aliases.get(settings.QDRANT_COLLECTION) or settings.QDRANT_COLLECTION
    # Names come from the alias file: never let one point a lock path outside the store.
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        return None
    return name


def _embedded_lock_free(lock_path: Path, *, timeout: float, want_path: Path | None = None) -> None:
    """RuntimeError if another process holds `lock_path` for all of `timeout` seconds.

    With `want_path`, the file is touched while waiting, so a holder that hands the lock over
    on request (the edge engine's lease) gives it up; it is released again at once.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"the embedded vector store is held by another process ({lock_path})"
                    ) from None
                if want_path is not None:
                    want_path.touch()
                time.sleep(0.05)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
    finally:
        os.close(fd)


def check_llm() -> str:
    headers = {"Authorization": f"Bearer {settings.LLM_API_KEY}"}
    response = httpx.get(
        settings.LLM_BASE_URL.rstrip("/") + "/models", headers=headers, timeout=CHECK_TIMEOUT
    )
    response.raise_for_status()
    models = [m.get("id") for m in response.json().get("data", [])]
    return f"{len(models)} model(s) served"


def check_celery() -> str:
    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE)
    alive = WorkerHeartbeat.objects.filter(seen_at__gte=cutoff).count()
    waited = seconds_since_start()
    if not alive and waited < settings.WORKER_HEARTBEAT_MAX_AGE:
        # Beat sends the first heartbeat some 30 s after it starts, and the worker needs its own
        # start-up time to run it: silence that young is a start, not a failure.
        raise Starting(
            f"waiting for the first worker heartbeat ({waited:.0f}s since start, "
            f"expected within {settings.WORKER_HEARTBEAT_MAX_AGE}s)"
        )
    if not alive:
        raise RuntimeError(
            f"no worker heartbeat in the last {settings.WORKER_HEARTBEAT_MAX_AGE}s "
            "(start `python -m workers worker` and `python -m workers beat`)"
        )
    return f"{alive} worker(s) alive"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "redis": check_redis,
    "qdrant": check_qdrant,
    "llm": check_llm,
    "celery": check_celery,
}


def _run(name: str, check: Callable[[], str]) -> ComponentStatus:
    started = time.perf_counter()
    required = name in settings.READINESS_REQUIRED
    starting = False
    try:
        detail = check()
        ok = True
    except Starting as exc:
        detail, ok, starting = f"starting: {exc}", False, True
    except Exception as exc:  # noqa: BLE001 — any failure of a component is its status
        detail = f"{type(exc).__name__}: {exc}"[:300]
        ok = False
    finally:
        if name == "database" or name == "celery":
            connection.close()
    return ComponentStatus(
        ok=ok,
        required=required,
        detail=detail,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        starting=starting,
    )


def overall_status(components: dict[str, ComponentStatus]) -> tuple[bool, str]:
    """(ready, status). Ready when every required component is ok. The status is the worst of:
    fail (a required component failed), degraded (an optional one failed), starting (some are
    still coming up), ok."""
    ready = all(c.ok for c in components.values() if c.required)
    failed = [c for c in components.values() if not c.ok and not c.starting]
    if any(c.required for c in failed):
        return ready, "fail"
    if failed:
        return ready, "degraded"
    if any(c.starting for c in components.values()):
        return ready, "starting"
    return ready, "ok"


def readiness_report() -> tuple[bool, dict]:
    """(ready, report): ready is False when a required component fails or is still starting."""
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = {name: pool.submit(_run, name, check) for name, check in CHECKS.items()}
        components = {name: future.result() for name, future in futures.items()}
    ready, status = overall_status(components)
    return ready, {"status": status, "components": {n: asdict(c) for n, c in components.items()}}
