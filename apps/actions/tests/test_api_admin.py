"""The actions REST API and admin: secrets never shown again, scopes, and tenant isolation."""

from __future__ import annotations

import copy
import json

import pytest

from apps.actions import services
from apps.actions.demo_orders import action_definitions
from apps.actions.models import Action, ActionCall, CallStatus
from apps.conversations import services as chat
from apps.integrations.services import SUBSCRIBABLE_EVENT_TYPES
from tests.support.api import API, assert_error

pytestmark = pytest.mark.usefixtures("fresh_cache")

SECRET = "Bearer crm-token-do-not-show"


def definition(**change) -> dict:
    body = copy.deepcopy(action_definitions("https://orders.example.com")[0])
    body["headers"] = {"Authorization": SECRET}
    body.update(change)
    return body


@pytest.fixture
def action_a(tenant_a) -> Action:
    return services.action_create(tenant=tenant_a.tenant, **definition())


@pytest.fixture
def call_a(tenant_a, action_a) -> ActionCall:
    conversation = chat.conversation_start(tenant=tenant_a.tenant)
    return services.call_open(
        action=action_a,
        conversation=conversation,
        message=None,
        status=CallStatus.REFUSED,
        params={"order_number": "NW-482913"},
    )


def test_create_stores_headers_encrypted_and_never_returns_them(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["admin"])
    response = client.post(f"{API}/actions/", definition(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["header_names"] == ["Authorization"] and "headers" not in body
    assert "crm-token" not in response.content.decode()
    detail = client.get(f"{API}/actions/{body['id']}/")
    assert detail.status_code == 200 and "crm-token" not in detail.content.decode()
    stored = Action.objects.for_tenant(tenant_a.tenant).get(public_id=body["id"])
    assert "crm-token" not in stored.headers_encrypted
    assert services.action_headers(stored) == {"Authorization": SECRET}


def test_patch_without_headers_keeps_them(tenant_a, api_key_for, action_a):
    client = api_key_for(tenant_a.tenant, scopes=["admin"])
    response = client.patch(
        f"{API}/actions/{action_a.public_id}/", {"timeout_seconds": 2.5}, format="json"
    )
    assert response.status_code == 200, response.content
    action_a.refresh_from_db()
    assert action_a.timeout_seconds == 2.5
    assert services.action_headers(action_a) == {"Authorization": SECRET}


def test_invalid_definition_gets_the_error_body(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["admin"])
    response = client.post(
        f"{API}/actions/", definition(url_template="file:///etc/passwd"), format="json"
    )
    assert_error(response, 400, "invalid")
    duplicate = client.post(f"{API}/actions/", definition(), format="json")
    assert duplicate.status_code == 201
    assert_error(client.post(f"{API}/actions/", definition(), format="json"), 400, "invalid")


def test_key_without_admin_scope_cannot_manage_actions(tenant_a, api_key_for, action_a):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    assert_error(client.get(f"{API}/actions/"), 403)
    assert_error(client.post(f"{API}/actions/", definition(name="other"), format="json"), 403)


def test_key_of_other_tenant_can_neither_see_nor_change_actions_or_calls(
    tenant_a, tenant_b, api_key_for, action_a, call_a
):
    client = api_key_for(tenant_b.tenant, scopes=["admin"])
    assert client.get(f"{API}/actions/").json()["results"] == []
    assert client.get(f"{API}/action-calls/").json()["results"] == []
    assert_error(client.get(f"{API}/actions/{action_a.public_id}/"), 404)
    assert_error(
        client.patch(
            f"{API}/actions/{action_a.public_id}/",
            {"url_template": "https://evil.example/{order_number}"},
            format="json",
        ),
        404,
    )
    assert_error(client.delete(f"{API}/actions/{action_a.public_id}/"), 404)
    assert_error(client.get(f"{API}/action-calls/{call_a.public_id}/"), 404)
    action_a.refresh_from_db()
    assert action_a.url_template.startswith("https://orders.example.com/")


def test_calls_are_exported_for_conversation_readers(tenant_a, api_key_for, call_a):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    response = client.get(
        f"{API}/action-calls/", {"conversation": str(call_a.conversation.public_id)}
    )
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["action"] == "order_status" and row["status"] == "refused"
    assert row["params"] == {"order_number": "NW-482913"}


def test_action_executed_is_a_webhook_event_type():
    assert "action.executed" in SUBSCRIBABLE_EVENT_TYPES


# --- Admin --------------------------------------------------------------------------------------


def test_admin_of_other_tenant_sees_no_actions_or_calls(client, tenant_a, tenant_b, call_a):
    action = call_a.action
    client.force_login(tenant_b.admin)
    listing = client.get("/admin/actions/action/")
    assert listing.status_code == 200 and "order_status" not in listing.content.decode()
    assert client.get(f"/admin/actions/action/{action.pk}/change/").status_code in {302, 404}
    calls = client.get("/admin/actions/actioncall/")
    assert calls.status_code == 200 and str(call_a.public_id) not in calls.content.decode()
    assert client.get(f"/admin/actions/actioncall/{call_a.pk}/change/").status_code in {302, 404}


def test_admin_page_never_shows_header_values(client, tenant_a, action_a):
    client.force_login(tenant_a.admin)
    page = client.get(f"/admin/actions/action/{action_a.pk}/change/")
    assert page.status_code == 200
    assert "Authorization" in page.content.decode() and "crm-token" not in page.content.decode()


def test_agents_read_the_audit_but_not_definitions(client, tenant_a, call_a):
    client.force_login(tenant_a.agent)
    assert client.get("/admin/actions/action/").status_code == 403
    audit = client.get("/admin/actions/actioncall/")
    assert audit.status_code == 200 and "order_status" in audit.content.decode()


def test_admin_adds_an_action_with_headers(client, tenant_a):
    client.force_login(tenant_a.admin)
    body = definition(name="order_lookup")
    response = client.post(
        "/admin/actions/action/add/",
        {
            "tenant": tenant_a.tenant.pk,
            "name": body["name"],
            "title": body["title"],
            "description": body["description"],
            "examples": body["examples"],
            "parameters": json.dumps(body["parameters"]),
            "method": "GET",
            "url_template": body["url_template"],
            "timeout_seconds": "5",
            "result_fields": '["status"]',
            "identity_bindings": '{"email": "email"}',
            "is_active": "on",
            "headers_text": "Authorization: " + SECRET,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    action = Action.objects.for_tenant(tenant_a.tenant).get(name="order_lookup")
    assert services.action_headers(action) == {"Authorization": SECRET}


def test_tenant_admins_cannot_let_their_actions_reach_private_addresses(rf, tenant_a):
    """Whether actions may reach private addresses is in the tenant's settings: operators only."""
    from django.contrib import admin as django_admin

    from apps.tenants.models import Tenant

    tenant_admin = django_admin.site._registry[Tenant]
    request = rf.get("/admin/")
    request.user = tenant_a.owner
    assert "settings" in tenant_admin.get_readonly_fields(request, tenant_a.tenant)
    assert not services.private_targets_allowed(tenant_a.tenant)


def test_metrics_count_action_calls(client, settings, tenant_a, action_a, call_a):
    settings.METRICS_TOKEN = "metrics-test-token"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-test-token")
    assert response.status_code == 200
    text = response.content.decode()
    # call_a was refused (the action is bound to a signed-in customer it did not have).
    assert 'supportai_action_calls_total{outcome="refused",status="refused"}' in text
    assert "supportai_action_call_seconds_bucket" in text


def test_agents_see_the_calls_in_the_console(client, tenant_a, call_a):
    from django.urls import reverse

    from apps.workspace import selectors as workspace_selectors
    from apps.workspace import services as workspace_services

    workspace_services.inbox_grant(
        inbox=workspace_selectors.inbox_default(tenant=tenant_a.tenant), agent=tenant_a.agent
    )
    client.force_login(tenant_a.agent)
    url = reverse(
        "workspace:conversation",
        kwargs={"slug": "acme", "conversation_id": call_a.conversation.public_id},
    )
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    [row] = response.json()["action_calls"]
    assert row["action"] == "order_status" and row["status"] == "refused"
    assert row["params"] == {"order_number": "NW-482913"}
