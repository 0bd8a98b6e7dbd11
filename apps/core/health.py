"""Readiness checks, one per component. Each answers within its own timeout.

The report names components only: it never carries tenant data, so it is safe to expose to a
load balancer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import connection
from django.utils import timezone

CHECK_TIMEOUT = 2.0


@dataclass
class ComponentStatus:
    ok: bool
    required: bool
    detail: str
    latency_ms: float = 0.0


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_redis() -> str:
    if not settings.REDIS_URL:
        return "not configured: in-process cache and channel layer"
    import redis

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
    import qdrant_edge  # noqa: F401  (the embedded engine must be importable)

    return "embedded engine, storage writable"


def check_llm() -> str:
    headers = {"Authorization": f"Bearer {settings.LLM_API_KEY}"}
    response = httpx.get(
        settings.LLM_BASE_URL.rstrip("/") + "/models", headers=headers, timeout=CHECK_TIMEOUT
    )
    response.raise_for_status()
    models = [m.get("id") for m in response.json().get("data", [])]
    return f"{len(models)} model(s) served"


def check_celery() -> str:
    from apps.core.models import WorkerHeartbeat

    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE)
    alive = WorkerHeartbeat.objects.filter(seen_at__gte=cutoff).count()
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
    try:
        detail = check()
        ok = True
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
    )


def readiness_report() -> tuple[bool, dict]:
    """(ready, report): ready is False when a required component fails."""
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = {name: pool.submit(_run, name, check) for name, check in CHECKS.items()}
        components = {name: future.result() for name, future in futures.items()}
    ready = all(c.ok for c in components.values() if c.required)
    degraded = not all(c.ok for c in components.values())
    status = "fail" if not ready else ("degraded" if degraded else "ok")
    return ready, {"status": status, "components": {n: asdict(c) for n, c in components.items()}}
