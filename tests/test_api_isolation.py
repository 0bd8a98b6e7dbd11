"""The resource API's isolation matrix: every endpoint of conversations, messages, contacts,
feedback, knowledge, search, ask and analytics is checked for tenant isolation (another
tenant's key gets 404 and sees nothing in lists), scopes (403), revoked keys (401) and the one
error body. What each resource does is tested in its app: apps/conversations/tests/test_api_*.py,
apps/knowledge/tests/test_api.py, apps/analytics/tests/test_api.py.
"""

from __future__ import annotations

import json

import pytest

from apps.conversations.models import Contact, Feedback, Message
from apps.integrations.services import api_key_revoke
from apps.knowledge.models import Source
from tests.support.api import (
    API,
    RETURNS,
    api_url,
    assert_error,
    assert_unchanged,
    resource_objects,
)
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = pytest.mark.usefixtures("fresh_cache", "knowledge_store")


# (method, url template, object kind, required scope, request body)
DETAIL_ENDPOINTS = [
    ("get", "/conversations/{id}/", "conversation", "conversations:read", None),
    (
        "patch",
        "/conversations/{id}/",
        "conversation",
        "conversations:write",
        {"status": "resolved"},
    ),
    (
        "post",
        "/conversations/{id}/assign/",
        "conversation",
        "conversations:write",
        {"agent": "acme-agent@example.com"},
    ),
    ("post", "/conversations/{id}/resolve/", "conversation", "conversations:write", None),
    ("get", "/conversations/{id}/messages/", "conversation", "conversations:read", None),
    (
        "post",
        "/conversations/{id}/messages/",
        "conversation",
        "conversations:write",
        {"content": "Hello from B", "agent": "bluebird-agent@example.com"},
    ),
    ("get", "/contacts/{id}/", "contact", "contacts:read", None),
    ("patch", "/contacts/{id}/", "contact", "contacts:write", {"name": "Changed"}),
    ("delete", "/contacts/{id}/", "contact", "contacts:write", None),
    ("get", "/contacts/{id}/conversations/", "contact", "contacts:read", None),
    ("get", "/contacts/by-external-id/{external_id}/", "contact", "contacts:read", None),
    ("get", "/knowledge/sources/{id}/", "source", "knowledge:read", None),
    ("delete", "/knowledge/sources/{id}/", "source", "knowledge:write", None),
    ("post", "/knowledge/sources/{id}/sync/", "source", "knowledge:write", None),
    ("get", "/knowledge/documents/{id}/", "document", "knowledge:read", None),
    ("delete", "/knowledge/documents/{id}/", "document", "knowledge:write", None),
]
# Endpoints that name tenant A's objects in the body rather than the URL.
BODY_ENDPOINTS = [
    ("/feedback/", "conversations:write", lambda o: {"conversation_id": o, "rating": "5"}),
    ("/ask/", "conversations:write", lambda o: {"question": "Hi?", "conversation_id": o}),
]
LIST_ENDPOINTS = [
    ("/conversations/", "conversations:read"),
    ("/contacts/", "contacts:read"),
    ("/feedback/", "conversations:read"),
    ("/knowledge/sources/", "knowledge:read"),
    ("/knowledge/documents/", "knowledge:read"),
]
# (method, url, scope, valid body) for endpoints without an object in the URL.
COLLECTION_ENDPOINTS = [
    *[("get", url, scope, None) for url, scope in LIST_ENDPOINTS],
    ("post", "/contacts/", "contacts:write", {"external_id": "new-1"}),
    ("put", "/contacts/by-external-id/new-2/", "contacts:write", {"name": "New"}),
    ("post", "/knowledge/sources/", "knowledge:write", {"kind": "text", "name": "T", "text": "x"}),
    ("post", "/search/", "knowledge:read", {"query": "returns"}),
    ("post", "/ask/", "conversations:write", {"question": "How do returns work?"}),
    ("get", "/analytics/summary/", "analytics:read", None),
]


def _call(client, method, url, body=None, **extra):
    return getattr(client, method)(url, body, format="json", **extra)


# --- Tenant isolation -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "template", "kind", "scope", "body"), DETAIL_ENDPOINTS)
def test_key_of_other_tenant_gets_404(
    tenant_a, tenant_b, resources_a, api_key_for, method, template, kind, scope, body
):
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    response = _call(client_b, method, api_url(template, resources_a[kind]), body)
    assert_error(response, 404, "not_found")
    assert_unchanged(tenant_a, resources_a)


@pytest.mark.parametrize(("template", "scope", "body"), BODY_ENDPOINTS)
def test_key_of_other_tenant_naming_objects_in_the_body_gets_404(
    tenant_a, tenant_b, resources_a, api_key_for, template, scope, body
):
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    conversation_id = str(resources_a["conversation"].public_id)
    assert_error(_call(client_b, "post", API + template, body(conversation_id)), 404)
    assert_unchanged(tenant_a, resources_a)
    assert Message.objects.for_tenant(tenant_a.tenant).count() == 2


def test_feedback_on_other_tenants_message_is_refused(tenant_a, tenant_b, resources_a, api_key_for):
    objects_b = resource_objects(tenant_b, "bluebird")
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    body = {
        "conversation_id": str(objects_b["conversation"].public_id),
        "message_id": resources_a["answer"].pk,
        "rating": "down",
    }
    assert_error(client_b.post(f"{API}/feedback/", body, format="json"), 400)
    assert not Feedback.objects.for_tenant(tenant_a.tenant).filter(kind="thumbs").exists()


@pytest.mark.parametrize(("template", "scope"), LIST_ENDPOINTS)
def test_key_of_other_tenant_lists_none_of_its_objects(
    tenant_a, tenant_b, resources_a, api_key_for, template, scope
):
    resource_objects(tenant_b, "bluebird")
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    response = client_b.get(API + template)
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results) >= 1  # B sees its own
    ids = {str(item["id"]) for item in results}
    a_ids = {str(getattr(o, "public_id", o.pk)) for o in resources_a.values()}
    assert not ids & a_ids
    assert "acme" not in json.dumps(results).lower()


def test_upsert_by_external_id_of_other_tenant_makes_its_own_contact(
    tenant_a, tenant_b, resources_a, api_key_for
):
    client_b = api_key_for(tenant_b.tenant, scopes=["contacts:write"])
    response = client_b.put(f"{API}/contacts/by-external-id/crm-acme/", {"name": "B's"}, "json")
    assert response.status_code == 201, response.content
    assert response.json()["id"] != str(resources_a["contact"].public_id)
    assert Contact.objects.for_tenant(tenant_a.tenant).get(external_id="crm-acme").name == "Acme"


# The answer flow runs database work through channels' database_sync_to_async, which
# closes connections: these tests need real transactions.
@pytest.mark.django_db(transaction=True)
def test_search_and_ask_use_only_the_tenants_knowledge(tenant_a, tenant_b, api_key_for):
    ingest_text(tenant=tenant_a.tenant, title="Returns", text=RETURNS)
    ingest_text(
        tenant=tenant_b.tenant, title="Door code", text="Bluebird door code is 7741-KESTREL."
    )
    client_a = api_key_for(tenant_a.tenant, scopes=["knowledge:read", "conversations:write"])
    response = client_a.post(
        f"{API}/search/", {"query": "door code return", "limit": 10}, format="json"
    )
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results and all("KESTREL" not in r["text"] for r in results)
    assert results[0]["rank"] == 1 and results[0]["title"] == "Returns"
    a_source = Source.objects.for_tenant(tenant_a.tenant).get()
    assert results[0]["source_id"] == str(a_source.public_id)

    response = client_a.post(f"{API}/ask/", {"question": "What is the door code?"}, "json")
    assert response.status_code == 200, response.content
    assert "KESTREL" not in json.dumps(response.json())


# --- Scopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "template", "kind", "scope", "body"), DETAIL_ENDPOINTS)
def test_key_without_the_scope_gets_403(
    tenant_a, resources_a, api_key_for, method, template, kind, scope, body
):
    others = {"analytics:read", "webhooks:manage"}
    client = api_key_for(tenant_a.tenant, scopes=sorted(others))
    response = _call(client, method, api_url(template, resources_a[kind]), body)
    error = assert_error(response, 403, "insufficient_scope")
    assert scope in error["error"]["message"]
    assert_unchanged(tenant_a, resources_a)


@pytest.mark.parametrize(("method", "url", "scope", "body"), COLLECTION_ENDPOINTS)
def test_collection_endpoint_without_the_scope_gets_403(
    tenant_a, api_key_for, method, url, scope, body
):
    wrong = "contacts:read" if scope != "contacts:read" else "conversations:read"
    client = api_key_for(tenant_a.tenant, scopes=[wrong])
    error = assert_error(_call(client, method, API + url, body), 403, "insufficient_scope")
    assert scope in error["error"]["message"]
    assert not Contact.objects.for_tenant(tenant_a.tenant).exists()
    assert not Source.objects.for_tenant(tenant_a.tenant).exists()


def test_read_scope_cannot_write(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read", "contacts:read"])
    url = api_url("/conversations/{id}/", resources_a["conversation"])
    assert client.get(url).status_code == 200
    assert_error(client.patch(url, {"status": "resolved"}, format="json"), 403)
    assert_error(client.post(f"{API}/contacts/", {"external_id": "x"}, format="json"), 403)


# --- Dead keys and sessions -------------------------------------------------------------------


ALL_ENDPOINTS = [
    *[(m, t, k, b) for m, t, k, _s, b in DETAIL_ENDPOINTS],
    *[(m, u, None, b) for m, u, _s, b in COLLECTION_ENDPOINTS],
]


@pytest.mark.parametrize(("method", "template", "kind", "body"), ALL_ENDPOINTS)
def test_revoked_key_gets_401(tenant_a, resources_a, api_key_for, method, template, kind, body):
    client = api_key_for(tenant_a.tenant)
    api_key_revoke(api_key=client.api_key)
    url = api_url(template, resources_a[kind]) if kind else API + template
    assert_error(_call(client, method, url, body), 401, "revoked_api_key")
    assert_unchanged(tenant_a, resources_a)


def test_agent_session_reads_conversations_and_outsider_gets_404(tenant_a, resources_a):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(tenant_a.agent)
    assert client.get(f"{API}/conversations/?tenant=acme").status_code == 200
    assert_error(client.get(f"{API}/analytics/summary/?tenant=acme"), 403)
    outsider = APIClient()
    outsider.force_login(tenant_a.outsider)
    assert_error(outsider.get(f"{API}/conversations/?tenant=acme"), 404)
