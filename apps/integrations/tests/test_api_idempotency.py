"""The integrations API's idempotency keys (one object per key and sender, conflicts, retries
while the first request runs) and the management of API keys through the API."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.integrations.models import ApiKey, WebhookSubscription
from apps.integrations.tests.factories import ApiKeyFactory
from tests.support.api import assert_error, create_subscription

pytestmark = pytest.mark.usefixtures("fresh_cache", "webhooks_to_loopback")

API = "/api/v1"


# --- Idempotency ------------------------------------------------------------------------------


def test_repeated_post_with_one_idempotency_key_creates_one_object(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    first = create_subscription(client, "create-sub-1")
    second = create_subscription(client, "create-sub-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert WebhookSubscription.objects.for_tenant(tenant_a.tenant).count() == 1


def test_same_idempotency_key_with_another_body_is_422(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    assert create_subscription(client, "k-2").status_code == 201
    response = create_subscription(client, "k-2", url="http://127.0.0.1:9/other")
    assert_error(response, 422, "idempotency_key_reused")
    assert WebhookSubscription.objects.for_tenant(tenant_a.tenant).count() == 1


def test_idempotency_keys_are_per_tenant_and_per_sender(tenant_a, tenant_b, api_key_for):
    assert create_subscription(api_key_for(tenant_a.tenant), "shared").status_code == 201
    assert create_subscription(api_key_for(tenant_b.tenant), "shared").status_code == 201
    # Another key of the same tenant never receives the first key's stored response.
    response = create_subscription(api_key_for(tenant_a.tenant), "shared")
    assert_error(response, 422)


def test_a_failed_request_does_not_spend_the_key(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    assert create_subscription(client, "k-3", url="ftp://bad").status_code == 400
    assert create_subscription(client, "k-3", url="ftp://bad").status_code == 400
    assert "Idempotent-Replayed" not in create_subscription(client, "k-3", url="ftp://bad")


def test_idempotency_works_for_session_users(tenant_a):
    client = APIClient()
    client.force_login(tenant_a.admin)
    first = create_subscription(client, "sess-1", HTTP_X_TENANT="acme")
    second = create_subscription(client, "sess-1", HTTP_X_TENANT="acme")
    assert first.status_code == 201 and second["Idempotent-Replayed"] == "true"
    assert WebhookSubscription.objects.for_tenant(tenant_a.tenant).count() == 1


def test_a_retry_while_the_first_request_runs_is_409(tenant_a, api_key_for):
    from apps.integrations.idempotency import key_digest as idempotency_key_digest
    from apps.integrations.models import IdempotencyRecord

    client = api_key_for(tenant_a.tenant)
    body = b'{"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}'
    # What the first request leaves while it is still running: a claimed key, no response yet.
    IdempotencyRecord.objects.create(
        tenant=tenant_a.tenant,
        key=idempotency_key_digest("busy"),
        principal=f"key:{client.api_key.pk}",
        method="POST",
        path=f"{API}/webhooks/subscriptions/",
        body_hash=hashlib.sha256(body).hexdigest(),
        expires_at=timezone.now() + timedelta(hours=24),
    )
    response = client.post(
        f"{API}/webhooks/subscriptions/",
        body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="busy",
    )
    assert_error(response, 409, "idempotency_key_in_progress")


def test_overlong_idempotency_key_is_400(tenant_a, api_key_for):
    response = create_subscription(api_key_for(tenant_a.tenant), "x" * 256)
    assert_error(response, 400, "invalid_idempotency_key")


# --- API keys -------------------------------------------------------------------------------


def test_create_api_key_returns_the_plaintext_once(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    response = client.post(
        f"{API}/api-keys/", {"name": "CRM", "scopes": ["contacts:read"]}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"].startswith(body["prefix"] + "_") and body["scopes"] == ["contacts:read"]
    new_client = APIClient()
    new_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['key']}")
    assert_error(new_client.get(f"{API}/api-keys/"), 403)  # contacts:read only
    listed = client.get(f"{API}/api-keys/{body['id']}/").json()
    assert "key" not in listed and listed["prefix"] == body["prefix"]


def test_create_api_key_rejects_unknown_scopes(tenant_a, api_key_for):
    response = api_key_for(tenant_a.tenant).post(
        f"{API}/api-keys/", {"name": "x", "scopes": ["root"]}, format="json"
    )
    assert_error(response, 400, "invalid")


def test_revoke_and_delete_both_revoke(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    one, two = ApiKeyFactory(tenant=tenant_a.tenant), ApiKeyFactory(tenant=tenant_a.tenant)
    response = client.post(f"{API}/api-keys/{one.public_id}/revoke/")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert client.delete(f"{API}/api-keys/{two.public_id}/").status_code == 204
    assert ApiKey.objects.for_tenant(tenant_a.tenant).filter(revoked_at__isnull=False).count() == 2
    revoked = client.get(f"{API}/api-keys/?revoked=true").json()["results"]
    assert {k["id"] for k in revoked} == {str(one.public_id), str(two.public_id)}


def test_admin_session_creates_a_key_attributed_to_them(tenant_a):
    client = APIClient()
    client.force_login(tenant_a.admin)
    response = client.post(
        f"{API}/api-keys/?tenant=acme", {"name": "mine", "scopes": ["admin"]}, format="json"
    )
    assert response.status_code == 201, response.content
    key = ApiKey.objects.for_tenant(tenant_a.tenant).get(name="mine")
    assert key.created_by == tenant_a.admin
