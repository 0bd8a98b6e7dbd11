"""The Celery worker's metrics endpoint: a small HTTP server in the worker's main process.

Workers run on other machines than the web process, so `/metrics` of the web process cannot
see them. With `WORKER_METRICS_PORT` set, the worker serves `GET /metrics` itself, with the
same bearer token as the web endpoint. With the prefork pool, the task runs in child processes:
set `PROMETHEUS_MULTIPROC_DIR` (an empty folder per worker, before it starts) so the children's
values are written there and this exporter adds them up.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from apps.core.observability import metrics

logger = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line."""


def metrics_app(token: str) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering /metrics with the bearer check of the web endpoint."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or not token:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        status = check_bearer(environ.get("HTTP_AUTHORIZATION", ""), token)
        if status == 401:
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"authentication required\n"]
        if status == 403:
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"forbidden\n"]
        body = generate_latest(metrics.registry())
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [body]

    return app


def check_bearer(header: str, token: str) -> int:
    """200 when `header` is `Bearer <token>`, 401 when absent or malformed, 403 when wrong."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return 401
    if not hmac.compare_digest(value.strip().encode(), token.encode()):
        return 403
    return 200


def start_exporter(*, port: int, addr: str, token: str) -> WSGIServer | None:
    """Serve the worker's metrics on addr:port in a daemon thread."""
    if not token:
        logger.warning("WORKER_METRICS_PORT is set but METRICS_TOKEN is empty: exporter disabled")
        return None
    if not metrics.multiprocess_dir():
        logger.warning(
            "worker metrics exporter without PROMETHEUS_MULTIPROC_DIR: values recorded in "
            "prefork child processes are not visible"
        )
    server = make_server(addr, port, metrics_app(token), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True)
    thread.start()
    logger.info("worker metrics on http://%s:%s/metrics", addr, server.server_port)
    return server
