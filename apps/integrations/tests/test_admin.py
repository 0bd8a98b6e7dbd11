"""The admin pages for keys, subscriptions and deliveries stay within the tenant."""

from __future__ import annotations

import io

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command

from apps.integrations.authentication import api_key_check
from apps.integrations.models import ApiKey, DeliveryStatus, WebhookDelivery
from apps.integrations.tests.factories import ApiKeyFactory, WebhookDeliveryFactory


def test_admin_creates_a_key_and_sees_the_plaintext_once(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post(
        "/admin/integrations/apikey/add/",
        {"tenant": tenant_a.tenant.pk, "name": "CRM", "scopes": ["contacts:read"]},
        follow=True,
    )
    assert response.status_code == 200
    key = ApiKey.objects.for_tenant(tenant_a.tenant).get(name="CRM")
    shown = [str(m) for m in get_messages(response.wsgi_request)] + [response.content.decode()]
    plaintext = next(
        word for text in shown for word in text.split() if word.startswith(key.prefix + "_")
    )
    assert api_key_check(plaintext) == key
    assert key.created_by == tenant_a.admin


def test_admin_of_another_tenant_sees_no_keys_and_cannot_add_to_it(client, tenant_a, tenant_b):
    key = ApiKeyFactory(tenant=tenant_a.tenant, name="A secret key")
    client.force_login(tenant_b.admin)
    listing = client.get("/admin/integrations/apikey/")
    assert listing.status_code == 200 and "A secret key" not in listing.content.decode()
    assert client.get(f"/admin/integrations/apikey/{key.pk}/change/").status_code in {302, 404}
    response = client.post(
        "/admin/integrations/apikey/add/",
        {"tenant": tenant_a.tenant.pk, "name": "sneaky", "scopes": ["admin"]},
    )
    assert response.status_code == 200  # the form refuses the tenant choice
    assert not ApiKey.objects.for_tenant(tenant_a.tenant).filter(name="sneaky").exists()


def test_agent_does_not_see_api_keys(client, tenant_a):
    client.force_login(tenant_a.agent)
    assert client.get("/admin/integrations/apikey/").status_code == 403


def test_revoke_and_redeliver_actions(client, tenant_a, monkeypatch):
    from apps.integrations import services

    monkeypatch.setattr(services, "_enqueue_delivery", lambda pk, countdown=0: None)
    key = ApiKeyFactory(tenant=tenant_a.tenant)
    delivery = WebhookDeliveryFactory(tenant=tenant_a.tenant, status=DeliveryStatus.DEAD)
    client.force_login(tenant_a.admin)
    client.post(
        "/admin/integrations/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    client.post(
        "/admin/integrations/webhookdelivery/",
        {"action": "redeliver", "_selected_action": [delivery.pk]},
    )
    delivery = WebhookDelivery.objects.for_tenant(tenant_a.tenant).get(pk=delivery.pk)
    assert delivery.status == DeliveryStatus.PENDING


def test_create_api_key_command_prints_a_working_key(tenant_a):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_key",
        "--tenant",
        "acme",
        "--scopes",
        "contacts:read,contacts:write",
        "admin",
        stdout=out,
        stderr=err,
    )
    key = api_key_check(out.getvalue().strip())
    assert key.tenant == tenant_a.tenant
    assert key.scopes == ["contacts:read", "contacts:write", "admin"]
    assert "shown again" in err.getvalue()


def test_create_api_key_command_refuses_unknown_tenants_and_scopes(tenant_a):
    with pytest.raises(CommandError, match="No active tenant"):
        call_command("create_api_key", "--tenant", "nope", "--scopes", "admin")
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_key", "--tenant", "acme", "--scopes", "root")
