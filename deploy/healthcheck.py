"""Container health checks, one per role: `python deploy/healthcheck.py web|worker|beat`.

Exit 0 when healthy, 1 otherwise. Used by the image's HEALTHCHECK and by deploy/compose.yaml;
Kubernetes probes the web role over HTTP and the others with this script.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.request
from pathlib import Path


def web() -> bool:
    # Host: localhost, which ALLOWED_HOSTS must keep (it is in the default list), so the check
    # passes whatever public host name the deployment serves.
    request = urllib.request.Request("http://127.0.0.1:8000/healthz", headers={"Host": "localhost"})
    with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 (fixed URL)
        return response.status == 200


def worker() -> bool:
    """This container's Celery worker answers a ping over the broker."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    # A check every minute must not leave its own metrics files in the worker's folder.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from supportai.celery import app

    replies = app.control.ping(destination=[f"celery@{socket.gethostname()}"], timeout=10)
    return bool(replies)


def beat() -> bool:
    """Beat rewrites its schedule file every few minutes while it runs."""
    data_dir = Path(os.environ.get("DATA_DIR", "/data"))
    max_age = float(os.environ.get("BEAT_HEALTH_MAX_AGE", "600"))
    files = list(data_dir.glob("celerybeat-schedule*"))
    if not files:
        return False
    newest = max(f.stat().st_mtime for f in files)
    return time.time() - newest < max_age


CHECKS = {"web": web, "worker": worker, "beat": beat}

if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else "web"
    if role not in CHECKS:
        sys.exit(f"usage: healthcheck.py {'|'.join(CHECKS)}")
    try:
        healthy = CHECKS[role]()
    except Exception as exc:  # noqa: BLE001 (any failure means unhealthy)
        print(f"{role} unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        healthy = False
    sys.exit(0 if healthy else 1)
