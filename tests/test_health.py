"""/healthz and /readyz against the real database and Redis."""

import json

import pytest
from django.utils import timezone

from apps.core.models import WorkerHeartbeat


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
