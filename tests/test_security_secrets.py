"""Secrets are shown once and never stored or sent in clear afterwards (issue #11, hole 3).

- A POST replayed with `Idempotency-Key` keeps its stored response encrypted (with a key
  derived from the client's Idempotency-Key, which is itself stored only as a digest), so an
  API key or webhook secret created that way is not readable in the database.
- The admin shows a new API key or webhook secret in the page that answers the form, not in
  the `messages` cookie (signed, not encrypted) that the browser sends back on later requests.
"""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.integrations.models import ApiKey, WebhookSubscription

pytestmark = pytest.mark.usefixtures("fresh_cache", "webhooks_to_loopback")

API = "/api/v1"


def _idempotency_table_text() -> str:
    """Everything the idempotency table holds, as text (what a database dump would show)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_idempotencyrecord")
        return repr(cursor.fetchall())


def test_api_key_created_with_an_idempotency_key_is_not_stored_in_clear(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["admin"])
    body = {"name": "CRM sync", "scopes": ["contacts:read"]}
    headers = {"HTTP_IDEMPOTENCY_KEY": "create-crm-key-6f1c2a"}
    first = client.post(f"{API}/api-keys/", body, format="json", **headers)
    assert first.status_code == 201, first.content
    plaintext = first.json()["key"]
    assert plaintext.startswith("sk_live_")
    stored = _idempotency_table_text()
    assert plaintext not in stored
    assert plaintext.split("_")[-1][:12] not in stored
    assert "create-crm-key-6f1c2a" not in stored
    # The client that lost the first answer still gets the key on a retry, and only one exists.
    again = client.post(f"{API}/api-keys/", body, format="json", **headers)
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["key"] == plaintext
    assert ApiKey.objects.for_tenant(tenant_a.tenant).filter(name="CRM sync").count() == 1


def test_webhook_secrets_on_create_and_rotate_are_not_stored_in_clear(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["webhooks:manage"])
    created = client.post(
        f"{API}/webhooks/subscriptions/",
        {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="sub-create-1",
    )
    assert created.status_code == 201, created.content
    subscription_id = created.json()["id"]
    rotated = client.post(
        f"{API}/webhooks/subscriptions/{subscription_id}/rotate-secret/",
        format="json",
        HTTP_IDEMPOTENCY_KEY="sub-rotate-1",
    )
    assert rotated.status_code == 200, rotated.content
    stored = _idempotency_table_text()
    for secret in (created.json()["secret"], rotated.json()["secret"]):
        assert secret.startswith("whsec_") and secret not in stored


def _cookie_values(response) -> str:
    return " ".join(morsel.value for morsel in response.cookies.values())


def test_admin_shows_a_new_api_key_in_the_page_not_in_a_cookie(tenant_a):
    client = APIClient()
    client.force_login(tenant_a.admin)
    response = client.post(
        "/admin/integrations/apikey/add/",
        {"tenant": tenant_a.tenant.pk, "name": "CRM", "scopes": ["contacts:read"]},
    )
    key = ApiKey.objects.for_tenant(tenant_a.tenant).get(name="CRM")
    assert response.status_code == 200, response.status_code
    page = response.content.decode()
    plaintext = next(word for word in page.split() if word.startswith(key.prefix + "_"))
    assert plaintext.strip().startswith("sk_live_")
    assert key.prefix not in _cookie_values(response)
    assert (
        response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    )
    # The next page the admin opens carries no trace of it either.
    follow = client.get("/admin/integrations/apikey/")
    assert key.prefix + "_" not in follow.content.decode()
    assert key.prefix not in _cookie_values(follow)


def test_admin_shows_a_new_webhook_secret_in_the_page_not_in_a_cookie(tenant_a):
    client = APIClient()
    client.force_login(tenant_a.admin)
    response = client.post(
        "/admin/integrations/webhooksubscription/add/",
        {
            "tenant": tenant_a.tenant.pk,
            "url": "http://127.0.0.1:9/hook",
            "event_types": ["*"],
            "is_active": "on",
        },
    )
    assert response.status_code == 200, response.content[:2000]
    subscription = WebhookSubscription.objects.for_tenant(tenant_a.tenant).get()
    assert subscription.secret in response.content.decode()
    assert subscription.secret not in _cookie_values(response)
    rotated = client.post(
        "/admin/integrations/webhooksubscription/",
        {"action": "rotate_secrets", "_selected_action": [subscription.pk]},
    )
    subscription.refresh_from_db()
    assert rotated.status_code == 200
    assert subscription.secret in rotated.content.decode()
    assert subscription.secret not in _cookie_values(rotated)
