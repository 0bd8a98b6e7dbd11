"""Fixtures for every test (a pytest plugin that the root conftest.py registers): real processes
(Celery worker, web server), receivers and API clients.

Real processes run against the pytest-django test database, so the tests that use them need
`transactional_db` (their rows must be committed for another process to see them). Each
fixture fails with a message naming what is missing instead of skipping.

- `celery_worker_process`: a `celery -A supportai worker` subprocess (session-scoped), on the
  broker `TEST_CELERY_BROKER_URL` (default redis://127.0.0.1:6379/5, flushed at start); this
  process publishes there too while the fixture is active.
- `live_server_process`: uvicorn serving `supportai.asgi:application` on a free loopback port.
- `http_receiver`: an HTTP server on 127.0.0.1 that records requests and answers with the
  statuses a test scripts (`respond_with(500, 500)` then 200).
- `celery_eager`: runs `.delay()` in-process for unit-level tests.
- `fresh_cache`: empties the (per-run) cache, e.g. before rate-limit tests.
- `api_key_for`: creates an API key and returns an APIClient that sends it.
- `resources_a`: one object of every REST API resource in tenant A, for the API tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEST_BROKER = "redis://127.0.0.1:6379/5"
# Tiny retry delays for the subprocesses, so retry and dead-letter tests finish quickly.
SUBPROCESS_RETRY_DELAYS = "0.3,0.3"


# --- Helpers ------------------------------------------------------------------------------------


def _require_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable ({exc}); start Redis to run this test.")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_subprocess() -> str:
    """A DATABASE_URL for the test database pytest-django created (`test_<name>`)."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("Subprocess tests need PostgreSQL (DATABASE_URL=postgres://...).")
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a web or worker subprocess that shares this test run's state."""
    from django.conf import settings

    broker = os.environ.get("TEST_CELERY_BROKER_URL", DEFAULT_TEST_BROKER)
    return {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": broker,
        "REDIS_URL": settings.REDIS_URL or os.environ.get("REDIS_URL", ""),
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_RETRY_DELAYS": SUBPROCESS_RETRY_DELAYS,
        "WEBHOOK_TIMEOUT": "5",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _point_celery_at(broker_url: str) -> str:
    """Make this process publish to `broker_url`; returns the previous broker URL."""
    from kombu import pools

    from supportai.celery import app

    previous = app.conf.broker_url
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    # kombu keeps closed pools registered per URL; switching back to a URL would reuse a closed
    # pool ("Acquire on closed pool"), so forget them all.
    pools.reset()
    app.conf.broker_url = broker_url
    return previous


def start_uvicorn(*, port: int, env: dict[str, str], log: Any) -> subprocess.Popen:
    """uvicorn serving this project on 127.0.0.1:`port`, its output going to `log`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "supportai.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen, name: str) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until(predicate: Callable[[], Any], *, timeout: float = 30.0, message: str) -> Any:
    """Poll `predicate` until it returns something truthy; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.05)


# --- Celery ---------------------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path
    broker_url: str
    node: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_celery_worker(
    *,
    env: dict[str, str],
    log_path: Path,
    queues: str,
    pool: str = "threads",
    concurrency: int = 4,
    name: str = "test",
    timeout: float = 60.0,
) -> WorkerProcess:
    """A `celery -A supportai worker` subprocess, returned once it answers a ping.

    This process must already publish to the worker's broker (`_point_celery_at`). The node
    name is unique, so a test can ping, inspect or kill this worker among others.
    """
    node = f"{name}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "supportai",
                "worker",
                "-Q",
                queues,
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
                "-n",
                node,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(
        process=process, log_path=log_path, broker_url=env["CELERY_BROKER_URL"], node=node
    )
    from supportai.celery import app

    deadline = time.monotonic() + timeout
    while not app.control.ping(destination=[node], timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process, node)
            pytest.fail(f"The Celery worker did not start. Its log:\n{worker.log()[-4000:]}")
    return worker


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, tmp_path_factory) -> Iterator[WorkerProcess]:
    import redis

    env = subprocess_env()
    broker = env["CELERY_BROKER_URL"]
    _require_redis(broker)
    # Tasks left by an earlier run would name rows of an older test database.
    redis.Redis.from_url(broker).flushdb()
    previous_broker = _point_celery_at(broker)
    try:
        worker = start_celery_worker(
            env=env,
            log_path=tmp_path_factory.mktemp("celery") / "worker.log",
            queues="default,ingest,events,batch",
        )
        try:
            yield worker
        finally:
            _stop(worker.process, "celery worker")
    finally:
        _point_celery_at(previous_broker)


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Run tasks in-process when `.delay()` is called (for unit-level tests)."""
    from supportai.celery import app

    previous = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous


# --- Web server -----------------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def live_server_process(transactional_db, tmp_path) -> Iterator[LiveServer]:
    import httpx

    port = _free_port()
    env = subprocess_env(ALLOWED_HOSTS="127.0.0.1,localhost")
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        process = start_uvicorn(port=port, env=env, log=log)
    server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path, env=env)

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"uvicorn exited. Its log:\n{server.log()[-4000:]}")
        try:
            return httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, timeout=60, message="uvicorn did not answer /healthz in 60 s")
        yield server
    finally:
        _stop(process, "uvicorn")


# --- HTTP receiver --------------------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """Records every POST; answers with scripted statuses, then `default_status`."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self._script: list[int] = []
        self.default_status = 200
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(
                        ReceivedRequest(self.path, {k: v for k, v in self.headers.items()}, body)
                    )
                    status = receiver._script.pop(0) if receiver._script else None
                    receiver._lock.notify_all()
                status = status or receiver.default_status
                payload = b'{"ok": true}' if status < 300 else b'{"error": "receiver says no"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks"

    def respond_with(self, *statuses: int, then: int = 200) -> None:
        with self._lock:
            self._script = list(statuses)
            self.default_status = then

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedRequest]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                pytest.fail(
                    f"The receiver got {len(self.requests)} request(s), expected {count}, "
                    f"within {timeout} s"
                )
            return list(self.requests)


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


# --- API clients and state ---------------------------------------------------------------------


@pytest.fixture
def fresh_cache() -> None:
    from django.conf import settings
    from django.core.cache import cache

    if settings.REDIS_URL:
        _require_redis(settings.REDIS_URL)
    cache.clear()


@pytest.fixture
def webhooks_to_loopback(settings) -> None:
    """Tests deliver to receivers on 127.0.0.1, which production refuses."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def api_key_for(db) -> Callable[..., Any]:
    """`api_key_for(tenant, scopes=[...])` → an APIClient authenticated with a new key."""
    from rest_framework.test import APIClient

    from apps.integrations.services import api_key_create

    def make(tenant: Any, scopes: list[str] | None = None, **kwargs: Any) -> APIClient:
        api_key, plaintext = api_key_create(
            tenant=tenant, name=kwargs.pop("name", "test"), scopes=scopes or ["admin"], **kwargs
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        client.api_key = api_key
        client.plaintext = plaintext
        return client

    return make


@pytest.fixture
def resources_a(tenant_a) -> dict[str, Any]:
    """One object of every REST API resource in tenant A (`tests/support/api.py`)."""
    # Imported here: a plugin module is imported before Django is set up.
    from tests.support.api import resource_objects

    return resource_objects(tenant_a, "acme")
