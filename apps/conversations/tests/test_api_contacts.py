"""The contacts API: CRUD, upsert by external id, validation, uniqueness and idempotency.
Isolation, scopes and dead keys for every endpoint: tests/test_api_isolation.py.
"""

from __future__ import annotations

import pytest

from apps.conversations.models import Contact
from tests.support.api import API, api_url, assert_error
from tests.support.knowledge import knowledge_store  # noqa: F401

pytestmark = pytest.mark.usefixtures("fresh_cache", "knowledge_store")


def test_contact_crud_and_contact_conversations(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["contacts:read", "contacts:write"])
    response = client.post(
        f"{API}/contacts/",
        {"external_id": "crm-2", "email": "two@example.com", "attributes": {"plan": "pro"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    contact = response.json()
    url = f"{API}/contacts/{contact['id']}/"
    assert client.get(url).json()["attributes"] == {"plan": "pro"}
    response = client.patch(url, {"name": "Two", "attributes": {"plan": "team"}}, format="json")
    assert response.json()["name"] == "Two" and response.json()["attributes"] == {"plan": "team"}
    assert (
        client.get(f"{API}/contacts/?external_id=crm-2").json()["results"][0]["id"]
        == (contact["id"])
    )
    assert client.get(f"{API}/contacts/by-external-id/crm-2/").json()["id"] == contact["id"]
    assert_error(client.get(f"{API}/contacts/by-external-id/nobody/"), 404)

    conversations = client.get(api_url("/contacts/{id}/conversations/", resources_a["contact"]))
    assert_error(conversations, 403)  # also needs conversations:read
    reader = api_key_for(tenant_a.tenant, scopes=["contacts:read", "conversations:read"])
    conversations = reader.get(api_url("/contacts/{id}/conversations/", resources_a["contact"]))
    assert [c["id"] for c in conversations.json()["results"]] == [
        str(resources_a["conversation"].public_id)
    ]

    assert client.delete(url).status_code == 204
    assert_error(client.get(url), 404)


def test_contact_upsert_by_external_id(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["contacts:write", "contacts:read"])
    url = f"{API}/contacts/by-external-id/crm-42/"
    response = client.put(url, {"email": "a@example.com", "attributes": {"tier": 1}}, "json")
    assert response.status_code == 201, response.content
    first = response.json()
    response = client.put(url, {"name": "Ann"}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        **first,
        "name": "Ann",
        "updated_at": response.json()["updated_at"],
    }
    assert Contact.objects.for_tenant(tenant_a.tenant).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"external_id": "x", "email": "not-an-email"},
        {"external_id": "x", "attributes": ["not", "an", "object"]},
        {"external_id": "x", "attributes": "text"},
        {"external_id": "x", "attributes": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},
        {"external_id": "x", "attributes": {"big": "x" * 20_000}},
        {"external_id": "x", "attributes": {f"k{i}": i for i in range(101)}},
        {"external_id": "x", "attributes": {"nul": "a\x00b"}},
        {"external_id": "x" * 256},
        {"external_id": "a\x00b"},
    ],
)
def test_contact_validation_errors(tenant_a, api_key_for, body):
    client = api_key_for(tenant_a.tenant, scopes=["contacts:write"])
    assert_error(client.post(f"{API}/contacts/", body, format="json"), 400, "invalid")
    assert not Contact.objects.for_tenant(tenant_a.tenant).exists()


def test_contact_external_id_is_unique_per_tenant(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["contacts:write"])
    body = {"external_id": "crm-acme"}
    assert_error(client.post(f"{API}/contacts/", body, format="json"), 409, "conflict")
    other = client.post(f"{API}/contacts/", {"external_id": "crm-other"}, format="json").json()
    response = client.patch(f"{API}/contacts/{other['id']}/", body, format="json")
    assert_error(response, 409, "conflict")
    assert_error(client.put(f"{API}/contacts/by-external-id/a%00b/", {}, "json"), 400)


def test_repeated_contact_post_with_idempotency_key_creates_one(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["contacts:write"])
    body = {"external_id": "crm-7", "name": "Seven"}
    first = client.post(f"{API}/contacts/", body, format="json", HTTP_IDEMPOTENCY_KEY="c-7")
    again = client.post(f"{API}/contacts/", body, format="json", HTTP_IDEMPOTENCY_KEY="c-7")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    assert Contact.objects.for_tenant(tenant_a.tenant).count() == 1
