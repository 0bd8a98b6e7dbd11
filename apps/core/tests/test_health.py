"""/healthz and /readyz against the real database and Redis."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core import health
from apps.core.models import WorkerHeartbeat
from tests.support.llm import llm_server  # noqa: F401


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_component(client, db, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    response = client.get("/readyz")
    body = response.json()
    assert set(body["components"]) == {"database", "redis", "qdrant", "llm", "celery"}
    assert body["components"]["database"]["ok"] is True
    assert body["components"]["redis"]["ok"] is True, body["components"]["redis"]
    assert body["components"]["redis"]["detail"] == "ping ok"
    # The LLM and the workers are not required: the product degrades without them.
    assert body["components"]["llm"]["ok"] is False
    assert body["components"]["llm"]["required"] is False
    assert response.status_code == 200
    assert body["status"] == "degraded"


def test_readyz_is_503_when_a_required_component_fails(client, db, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    settings.READINESS_REQUIRED = ["database", "llm"]
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"


def test_readyz_is_503_when_redis_is_unreachable(client, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["components"]["redis"]["ok"] is False


def test_readyz_sees_a_worker_heartbeat(client, transactional_db):
    # Checks run in their own threads and connections, so the row must be committed.
    WorkerHeartbeat.objects.create(hostname="worker-1", seen_at=timezone.now())
    body = client.get("/readyz").json()
    assert body["components"]["celery"] == {
        **body["components"]["celery"],
        "ok": True,
        "detail": "1 worker(s) alive",
    }


@pytest.mark.parametrize("viewer", ["anonymous", "owner_b"])
def test_readyz_carries_no_tenant_data(client, tenant_a, tenant_b, viewer):
    if viewer == "owner_b":
        client.force_login(tenant_b.owner)
    text = json.dumps(client.get("/readyz").json())
    for world in (tenant_a, tenant_b):
        assert world.tenant.name not in text
        assert world.tenant.slug not in text
        assert world.widget_key.key not in text
        assert world.owner.email not in text


# --- start-up: no heartbeat yet is "starting" for one heartbeat interval ------------------------


def test_readyz_says_starting_until_the_first_worker_heartbeat(
    client,
    transactional_db,
    settings,
    llm_server,  # noqa: F811
):
    settings.LLM_BASE_URL = llm_server
    health.mark_process_started()
    response = client.get("/readyz")
    body = response.json()
    celery = body["components"]["celery"]
    assert celery["ok"] is False
    assert celery["starting"] is True
    assert celery["detail"].startswith("starting: waiting for the first worker heartbeat"), celery
    assert response.status_code == 200, body
    assert body["status"] == "starting", body

    WorkerHeartbeat.objects.create(hostname="worker-1", seen_at=timezone.now())
    body = client.get("/readyz").json()
    assert body["components"]["celery"]["starting"] is False
    assert body["status"] == "ok", body


def test_readyz_is_degraded_when_no_heartbeat_comes_in_time(
    client,
    transactional_db,
    settings,
    llm_server,  # noqa: F811
):
    settings.LLM_BASE_URL = llm_server
    settings.WORKER_HEARTBEAT_MAX_AGE = 1
    health.mark_process_started()
    time.sleep(1.2)
    body = client.get("/readyz").json()
    celery = body["components"]["celery"]
    assert celery["starting"] is False
    assert celery["ok"] is False
    assert "no worker heartbeat in the last 1s" in celery["detail"]
    assert body["status"] == "degraded", body


def test_a_stale_heartbeat_of_an_earlier_run_is_still_starting(client, transactional_db, settings):
    WorkerHeartbeat.objects.create(hostname="worker-1", seen_at=timezone.now() - timedelta(hours=3))
    health.mark_process_started()
    celery = client.get("/readyz").json()["components"]["celery"]
    assert celery["starting"] is True, celery


def test_readyz_is_503_while_a_required_component_is_starting(
    client,
    transactional_db,
    settings,
    llm_server,  # noqa: F811
):
    settings.LLM_BASE_URL = llm_server
    settings.READINESS_REQUIRED = ["database", "celery"]
    health.mark_process_started()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "starting"


def _component(*, ok: bool, required: bool = False, starting: bool = False):
    return health.ComponentStatus(ok=ok, required=required, detail="", starting=starting)


@pytest.mark.parametrize(
    "components,expected",
    [
        ({"a": _component(ok=True), "b": _component(ok=True, required=True)}, (True, "ok")),
        ({"a": _component(ok=False, starting=True)}, (True, "starting")),
        ({"a": _component(ok=False, starting=True), "b": _component(ok=False)}, (True, "degraded")),
        (
            {"a": _component(ok=False, required=True, starting=True), "b": _component(ok=True)},
            (False, "starting"),
        ),
        (
            {"a": _component(ok=False, required=True), "b": _component(ok=False, starting=True)},
            (False, "fail"),
        ),
    ],
    ids=["all-ok", "starting", "failure-beats-starting", "required-starting", "required-failed"],
)
def test_overall_status_is_the_worst_state(components, expected):
    assert health.overall_status(components) == expected
