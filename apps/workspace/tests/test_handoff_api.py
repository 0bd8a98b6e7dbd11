"""The REST API of inboxes, grants, routing rules and presence: what it does for the tenant's
own callers, and that the other tenant's keys and people get nothing (real PostgreSQL)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.conversations import services as chat
from apps.conversations.access import customer_message_post
from apps.conversations.models import ConversationStatus
from apps.workspace import assignment, inbox_settings, selectors, services
from apps.workspace.models import Inbox, RoutingRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects_a(tenant_a):
    tenant = tenant_a.tenant
    inbox = services.inbox_create(tenant=tenant, name="Billing")
    rule = inbox_settings.routing_rule_create(
        tenant=tenant, name="Refunds", keywords=["refund"], inbox=inbox
    )
    services.inbox_grant(inbox=inbox, agent=tenant_a.agent)
    conversation = chat.conversation_start(tenant=tenant, widget_key=tenant_a.widget_key)
    return {"inbox": inbox, "rule": rule, "conversation": conversation}


def _session(user, slug):
    client = APIClient()
    client.force_authenticate(user)
    client.credentials(HTTP_X_TENANT=slug)
    return client


def test_admin_key_sets_up_routing_and_assignment_end_to_end(tenant_a, api_key_for):
    api = api_key_for(tenant_a.tenant, scopes=["admin"])
    created = api.post(
        "/api/v1/inboxes/",
        {"name": "Disputes", "assignment": "round_robin", "agent_capacity": 2},
        format="json",
    )
    assert created.status_code == 201, created.json()
    inbox_id = created.json()["id"]
    assert created.json()["assignment"] == "round_robin"
    granted = api.post(
        f"/api/v1/inboxes/{inbox_id}/grants/", {"agent": tenant_a.agent.email}, format="json"
    )
    assert granted.status_code == 200
    assert [a["id"] for a in granted.json()] == [tenant_a.agent.pk]
    rule = api.post(
        "/api/v1/routing-rules/",
        {"name": "Chargebacks", "keywords": ["chargeback"], "inbox": inbox_id, "hand_off": True},
        format="json",
    )
    assert rule.status_code == 201, rule.json()
    assert rule.json()["inbox"] == inbox_id and rule.json()["position"] == 0

    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=tenant_a.agent)
    presence = api.get("/api/v1/agents/presence/").json()
    assert [(p["agent"]["id"], p["status"]) for p in presence] == [(tenant_a.agent.pk, "online")]
    conversation = chat.conversation_start(tenant=tenant_a.tenant, widget_key=tenant_a.widget_key)
    _, _, needs_answer = customer_message_post(conversation, "A chargeback, please", "c-1")
    assert not needs_answer
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WITH_AGENT
    assert conversation.assigned_agent == tenant_a.agent
    assert selectors.conversation_inbox(conversation=conversation).name == "Disputes"

    revoked = api.delete(f"/api/v1/inboxes/{inbox_id}/grants/{tenant_a.agent.pk}/")
    assert revoked.status_code == 204
    assert api.get(f"/api/v1/inboxes/{inbox_id}/grants/").json() == []
    assert api.delete(f"/api/v1/routing-rules/{rule.json()['id']}/").status_code == 204


def test_rule_with_nothing_to_do_or_unknown_inbox_is_refused(tenant_a, api_key_for):
    api = api_key_for(tenant_a.tenant, scopes=["admin"])
    no_action = api.post("/api/v1/routing-rules/", {"name": "x", "keywords": ["a"]}, format="json")
    assert no_action.status_code == 400
    unknown = api.post(
        "/api/v1/routing-rules/",
        {"name": "x", "inbox": "00000000-0000-0000-0000-000000000000"},
        format="json",
    )
    assert unknown.status_code == 400
    assert not RoutingRule.objects.for_tenant(tenant_a.tenant).exists()


def test_other_tenants_key_gets_nothing_of_tenant_a(tenant_a, tenant_b, objects_a, api_key_for):
    api = api_key_for(tenant_b.tenant, scopes=["admin"])
    inbox, rule = objects_a["inbox"], objects_a["rule"]
    conversation = objects_a["conversation"]
    for method, url, body in [
        ("get", f"/api/v1/inboxes/{inbox.public_id}/", None),
        ("patch", f"/api/v1/inboxes/{inbox.public_id}/", {"assignment": "round_robin"}),
        ("get", f"/api/v1/inboxes/{inbox.public_id}/grants/", None),
        ("post", f"/api/v1/inboxes/{inbox.public_id}/grants/", {"agent": tenant_b.agent.email}),
        ("delete", f"/api/v1/inboxes/{inbox.public_id}/grants/{tenant_a.agent.pk}/", None),
        ("get", f"/api/v1/routing-rules/{rule.public_id}/", None),
        ("patch", f"/api/v1/routing-rules/{rule.public_id}/", {"hand_off": True}),
        ("put", f"/api/v1/routing-rules/{rule.public_id}/", {"name": "x", "hand_off": True}),
        ("delete", f"/api/v1/routing-rules/{rule.public_id}/", None),
        ("post", f"/api/v1/conversations/{conversation.public_id}/assign/", {"agent": "1"}),
    ]:
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    listed = {i["id"] for i in api.get("/api/v1/inboxes/").json()}
    assert str(inbox.public_id) not in listed
    assert api.get("/api/v1/routing-rules/").json() == []
    assert api.get("/api/v1/agents/presence/").json() == []
    # Tenant A's inbox and agent cannot be named from tenant B either.
    own_inbox = selectors.inbox_default(tenant=tenant_b.tenant)
    cross_rule = api.post(
        "/api/v1/routing-rules/", {"name": "x", "inbox": str(inbox.public_id)}, format="json"
    )
    assert cross_rule.status_code == 400
    cross_grant = api.post(
        f"/api/v1/inboxes/{own_inbox.public_id}/grants/",
        {"agent": tenant_a.agent.email},
        format="json",
    )
    assert cross_grant.status_code == 400
    rule.refresh_from_db()
    assert not rule.hand_off and RoutingRule.objects.for_tenant(tenant_b.tenant).count() == 0
    assert Inbox.objects.for_tenant(tenant_a.tenant).get(pk=inbox.pk).assignment == "manual"


@pytest.mark.parametrize("who", ["owner", "admin", "agent", "outsider"])
def test_other_tenants_people_get_404_for_tenant_a(tenant_a, tenant_b, objects_a, who):
    client = _session(getattr(tenant_b, who), "acme")
    for url in (
        "/api/v1/inboxes/",
        f"/api/v1/inboxes/{objects_a['inbox'].public_id}/",
        "/api/v1/routing-rules/",
        f"/api/v1/routing-rules/{objects_a['rule'].public_id}/",
        "/api/v1/agents/presence/",
    ):
        assert client.get(url).status_code == 404, url


def test_agent_sees_only_granted_inboxes_and_may_not_change_rules(tenant_a, objects_a):
    client = _session(tenant_a.agent, "acme")
    names = [i["name"] for i in client.get("/api/v1/inboxes/").json()]
    assert names == ["Billing"]
    assert client.get("/api/v1/routing-rules/").status_code == 403
    assert client.post("/api/v1/routing-rules/", {"name": "x"}, format="json").status_code == 403
    inbox_url = f"/api/v1/inboxes/{objects_a['inbox'].public_id}/"
    assert client.patch(inbox_url, {"agent_capacity": 1}, format="json").status_code == 403


def test_key_without_admin_scope_cannot_manage_routing(tenant_a, objects_a, api_key_for):
    api = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    assert api.get("/api/v1/inboxes/").status_code == 200
    assert api.get("/api/v1/routing-rules/").status_code == 403
    assert api.post("/api/v1/inboxes/", {"name": "New"}, format="json").status_code == 403
