"""Redis restarted while customers chat and Celery work is queued (issue #11).

Everything is real and private to the test: a redis-server on a free loopback port without
persistence (a restart loses every key: channel-layer groups, rate-limit counters and the
Celery queue), a private PostgreSQL cluster, uvicorn, a Celery worker, and an HTTP receiver
for webhooks on 127.0.0.1. The widget-like client re-sends under the same `client_id` when it
is refused or its socket drops, and reads the replay when it reconnects.

What must hold: no customer message is lost or stored twice, every one is answered once, and
the domain events whose dispatch tasks Redis lost are dispatched by the outbox sweeper, each
webhook delivered once.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.fixtures import (
    HttpReceiver,
    _free_port,
    _point_celery_at,
    _stop,
    start_celery_worker,
    start_uvicorn,
    wait_until,
)
from tests.test_faults_postgres import (  # noqa: F401 - fixture
    Widget,
    _app_env,
    _manage,
    _stored,
    private_postgres,
)

pytestmark = pytest.mark.timeout(300)


@dataclass
class PrivateRedis:
    port: int
    log: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_until(lambda: _pings(client), timeout=20, message="private redis did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    import shutil

    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; install Redis to run this test.")
    server = PrivateRedis(port=_free_port(), log=tmp_path / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()


SEED = """
from apps.integrations.services import webhook_subscription_create
from apps.tenants.models import WidgetKey
from apps.tenants.services import tenant_create
tenant = tenant_create(name="Acme", slug="acme", allowed_origins=["https://acme.example.com"])
webhook_subscription_create(tenant=tenant, url="{url}", event_types=["*"])
print("KEY", WidgetKey.objects.for_tenant(tenant).get().key)
"""

SWEEP = """
from apps.events.tasks import dispatch_pending_events
print("SWEPT", dispatch_pending_events())
"""

EVENTS = """
from apps.events.models import Event
from apps.integrations.models import WebhookDelivery
pending = Event.objects.unscoped().filter(dispatched_at__isnull=True).count()
events = Event.objects.unscoped().count()
delivered = WebhookDelivery.objects.unscoped().filter(status="succeeded").count()
print("COUNTS", events, pending, delivered)
"""


def _counts(env) -> tuple[int, int, int]:
    line = next(
        line
        for line in _manage(env, "shell", "-c", EVENTS).splitlines()
        if line.startswith("COUNTS")
    )
    events, pending, delivered = (int(x) for x in line.split()[1:])
    return events, pending, delivered


def test_redis_restart_loses_no_message_and_no_queued_work(
    private_postgres,  # noqa: F811 - the fixture imported above
    private_redis,
    tmp_path,
):
    import requests

    receiver = HttpReceiver()
    receiver.thread.start()
    env = {
        **_app_env(private_postgres, tmp_path),
        "REDIS_URL": private_redis.url,
        "CELERY_BROKER_URL": private_redis.url,
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_RETRY_DELAYS": "0.3,0.3",
        "WEBHOOK_TIMEOUT": "5",
    }
    _manage(env, "migrate", "--noinput", "-v0")
    seed = _manage(env, "shell", "-c", SEED.format(url=receiver.url))
    key = next(line.split()[1] for line in seed.splitlines() if line.startswith("KEY "))
    port = _free_port()
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        web = start_uvicorn(port=port, env=env, log=log)
    worker = None
    try:

        def up() -> bool:
            if web.poll() is not None:
                pytest.fail(f"uvicorn exited. Its log:\n{log_path.read_text()[-4000:]}")
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(up, timeout=60, message="uvicorn did not answer /healthz in 60 s")
        widget = Widget(f"ws://127.0.0.1:{port}", key)

        # No worker yet: the first message's events wait in Redis as dispatch tasks.
        assert widget.say("c1", "Hello, where is my order?") == 1
        before_restart, pending, _ = _counts(env)
        assert pending == before_restart > 0  # queued, not yet run

        # Redis restarts: the queued tasks, the socket's group and the counters are gone.
        private_redis.restart()
        widget.say("c2", "Are you still there?")
        widget.close()

        # The worker comes up; the tasks Redis lost are re-sent by the outbox sweeper once
        # they are older than its grace period (30 s), as beat would every minute.
        previous_broker = _point_celery_at(private_redis.url)  # to ping the worker
        try:
            worker = start_celery_worker(
                env=env,
                log_path=tmp_path / "worker.log",
                queues="default,ingest,events,batch",
                name="fault-redis",
            )
        finally:
            _point_celery_at(previous_broker)
        time.sleep(31)
        _manage(env, "shell", "-c", SWEEP)

        def all_delivered() -> tuple[int, int, int] | None:
            events, pending, delivered = _counts(env)
            return (events, pending, delivered) if pending == 0 and delivered == events else None

        events, _, _ = wait_until(
            all_delivered, timeout=60, message=f"events not all dispatched: {_counts(env)}"
        )
        receiver.wait_for(events, timeout=30)
        time.sleep(1)  # nothing more may arrive
        deliveries = [r.headers.get("X-SupportAI-Delivery") for r in receiver.requests]
        assert len(deliveries) == len(set(deliveries)) == events, deliveries

        stored = _stored(private_postgres)
        customer = [client_id for role, client_id in stored if role == "customer"]
        assert customer == ["c1", "c2"], stored
        assert [role for role, _ in stored].count("assistant") == 2, stored
    finally:
        if worker is not None:
            _stop(worker.process, "celery worker")
        _stop(web, "uvicorn")
        receiver.server.shutdown()
        receiver.server.server_close()
