"""The resource API: conversations, messages, contacts, feedback, knowledge, search, ask, analytics.

Every endpoint is checked for tenant isolation (another tenant's key gets 404 and sees nothing
in lists), scopes (403), revoked keys (401) and the one error body; POSTs that create objects
are checked for idempotency, and an agent reply for reaching the conversation live.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.analytics.services import rollup_compute
from apps.assistant import prompts
from apps.conversations import services as chat
from apps.conversations.models import (
    Contact,
    Conversation,
    ConversationStatus,
    Feedback,
    Message,
    MessageRole,
)
from apps.core import realtime
from apps.events.models import Event, EventType
from apps.integrations.services import api_key_revoke
from apps.knowledge.models import Document, Source
from apps.knowledge.services import source_create
from apps.knowledge.testing import ingest_text, knowledge_store  # noqa: F401
from apps.workspace.selectors import inbox_default
from apps.workspace.services import inbox_grant
from tests.test_api_integrations import assert_error

pytestmark = pytest.mark.usefixtures("fresh_cache", "knowledge_store")

API = "/api/v1"
RETURNS = (
    "# Returns\n\nYou can return any anvil within 30 days of delivery for a full refund. "
    "Start a return from Orders, then Return item; we email a prepaid shipping label."
)


def _world_objects(world, tag: str) -> dict:
    tenant = world.tenant
    # The agent works the default inbox, so the API lets them (and integrations naming them)
    # see and answer its conversations (tests/test_security_authorization.py has the rest).
    inbox_grant(inbox=inbox_default(tenant=tenant), agent=world.agent)
    contact = Contact.objects.create(
        tenant=tenant, external_id=f"crm-{tag}", email=f"{tag}@example.com", name=tag.title()
    )
    conversation = chat.conversation_start(tenant=tenant, contact=contact)
    question, _ = chat.message_post_customer(conversation=conversation, text="Where is my anvil?")
    answer = chat.assistant_message_start(conversation=conversation)
    answer = chat.assistant_message_finish(
        message=answer, content="It ships tomorrow.", status="complete", decision="answer"
    )
    feedback = chat.feedback_record(conversation=conversation, kind="csat", rating=4)
    source = source_create(
        tenant=tenant, kind=Source.Kind.TEXT, name=f"{tag} text", text=RETURNS, sync=False
    )
    document = Document.objects.create(tenant=tenant, source=source, key="text", title="Returns")
    return {
        "contact": contact,
        "conversation": conversation,
        "question": question,
        "answer": answer,
        "feedback": feedback,
        "source": source,
        "document": document,
    }


@pytest.fixture
def objects_a(tenant_a):
    return _world_objects(tenant_a, "acme")


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


def _url(template: str, obj) -> str:
    return API + template.format(id=obj.public_id, external_id=getattr(obj, "external_id", ""))


def _call(client, method, url, body=None, **extra):
    return getattr(client, method)(url, body, format="json", **extra)


def _unchanged(world, objects) -> None:
    tenant = world.tenant
    conversation = Conversation.objects.for_tenant(tenant).get(pk=objects["conversation"].pk)
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.assigned_agent is None
    assert Message.objects.for_tenant(tenant).filter(role=MessageRole.AGENT).count() == 0
    assert Contact.objects.for_tenant(tenant).get(pk=objects["contact"].pk).name == "Acme"
    assert Source.objects.for_tenant(tenant).filter(pk=objects["source"].pk).exists()
    assert Source.objects.for_tenant(tenant).get(pk=objects["source"].pk).status == "idle"
    assert Document.objects.for_tenant(tenant).filter(pk=objects["document"].pk).exists()
    assert Feedback.objects.for_tenant(tenant).get().rating == "4"


# --- Tenant isolation -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "template", "kind", "scope", "body"), DETAIL_ENDPOINTS)
def test_key_of_other_tenant_gets_404(
    tenant_a, tenant_b, objects_a, api_key_for, method, template, kind, scope, body
):
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    response = _call(client_b, method, _url(template, objects_a[kind]), body)
    assert_error(response, 404, "not_found")
    _unchanged(tenant_a, objects_a)


@pytest.mark.parametrize(("template", "scope", "body"), BODY_ENDPOINTS)
def test_key_of_other_tenant_naming_objects_in_the_body_gets_404(
    tenant_a, tenant_b, objects_a, api_key_for, template, scope, body
):
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    conversation_id = str(objects_a["conversation"].public_id)
    assert_error(_call(client_b, "post", API + template, body(conversation_id)), 404)
    _unchanged(tenant_a, objects_a)
    assert Message.objects.for_tenant(tenant_a.tenant).count() == 2


def test_feedback_on_other_tenants_message_is_refused(tenant_a, tenant_b, objects_a, api_key_for):
    objects_b = _world_objects(tenant_b, "bluebird")
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    body = {
        "conversation_id": str(objects_b["conversation"].public_id),
        "message_id": objects_a["answer"].pk,
        "rating": "down",
    }
    assert_error(client_b.post(f"{API}/feedback/", body, format="json"), 400)
    assert not Feedback.objects.for_tenant(tenant_a.tenant).filter(kind="thumbs").exists()


@pytest.mark.parametrize(("template", "scope"), LIST_ENDPOINTS)
def test_key_of_other_tenant_lists_none_of_its_objects(
    tenant_a, tenant_b, objects_a, api_key_for, template, scope
):
    _world_objects(tenant_b, "bluebird")
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    response = client_b.get(API + template)
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results) >= 1  # B sees its own
    ids = {str(item["id"]) for item in results}
    a_ids = {str(getattr(o, "public_id", o.pk)) for o in objects_a.values()}
    assert not ids & a_ids
    assert "acme" not in json.dumps(results).lower()


def test_upsert_by_external_id_of_other_tenant_makes_its_own_contact(
    tenant_a, tenant_b, objects_a, api_key_for
):
    client_b = api_key_for(tenant_b.tenant, scopes=["contacts:write"])
    response = client_b.put(f"{API}/contacts/by-external-id/crm-acme/", {"name": "B's"}, "json")
    assert response.status_code == 201, response.content
    assert response.json()["id"] != str(objects_a["contact"].public_id)
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
    tenant_a, objects_a, api_key_for, method, template, kind, scope, body
):
    others = {"analytics:read", "webhooks:manage"}
    client = api_key_for(tenant_a.tenant, scopes=sorted(others))
    response = _call(client, method, _url(template, objects_a[kind]), body)
    error = assert_error(response, 403, "insufficient_scope")
    assert scope in error["error"]["message"]
    _unchanged(tenant_a, objects_a)


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


def test_read_scope_cannot_write(tenant_a, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read", "contacts:read"])
    url = _url("/conversations/{id}/", objects_a["conversation"])
    assert client.get(url).status_code == 200
    assert_error(client.patch(url, {"status": "resolved"}, format="json"), 403)
    assert_error(client.post(f"{API}/contacts/", {"external_id": "x"}, format="json"), 403)


# --- Dead keys and sessions -------------------------------------------------------------------


ALL_ENDPOINTS = [
    *[(m, t, k, b) for m, t, k, _s, b in DETAIL_ENDPOINTS],
    *[(m, u, None, b) for m, u, _s, b in COLLECTION_ENDPOINTS],
]


@pytest.mark.parametrize(("method", "template", "kind", "body"), ALL_ENDPOINTS)
def test_revoked_key_gets_401(tenant_a, objects_a, api_key_for, method, template, kind, body):
    client = api_key_for(tenant_a.tenant)
    api_key_revoke(api_key=client.api_key)
    url = _url(template, objects_a[kind]) if kind else API + template
    assert_error(_call(client, method, url, body), 401, "revoked_api_key")
    _unchanged(tenant_a, objects_a)


def test_agent_session_reads_conversations_and_outsider_gets_404(tenant_a, objects_a):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(tenant_a.agent)
    assert client.get(f"{API}/conversations/?tenant=acme").status_code == 200
    assert_error(client.get(f"{API}/analytics/summary/?tenant=acme"), 403)
    outsider = APIClient()
    outsider.force_login(tenant_a.outsider)
    assert_error(outsider.get(f"{API}/conversations/?tenant=acme"), 404)


# --- Conversations ------------------------------------------------------------------------------


def test_conversation_list_filters(tenant_a, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    other = chat.conversation_start(tenant=tenant_a.tenant, channel="api")
    chat.handoff_request(conversation=other, reason="low_confidence")
    conversation = objects_a["conversation"]

    def ids(query: str) -> set[str]:
        response = client.get(f"{API}/conversations/?{query}")
        assert response.status_code == 200, response.content
        return {c["id"] for c in response.json()["results"]}

    mine, theirs = str(conversation.public_id), str(other.public_id)
    assert ids("") == {mine, theirs}
    assert ids("status=waiting_for_human") == {theirs}
    assert ids("channel=api") == {theirs}
    assert ids("contact_external_id=crm-acme") == {mine}
    assert ids(f"contact={objects_a['contact'].public_id}") == {mine}
    assert ids("has_handoff=true") == {theirs}
    assert ids("has_handoff=false") == {mine}
    assert ids("rating=4") == {mine}
    assert ids("rating=5") == set()
    future = (timezone.now() + dt.timedelta(hours=1)).isoformat().replace("+", "%2B")
    assert ids(f"created_after={future}") == set()
    assert ids(f"updated_before={future}") == {mine, theirs}
    assert ids("ordering=created_at&page_size=1")  # one page
    assert_error(client.get(f"{API}/conversations/?status=nonsense"), 400, "invalid")
    assert_error(client.get(f"{API}/conversations/?created_after=yesterday"), 400)
    # Offsets PostgreSQL refuses are converted to UTC; unrepresentable instants are a 400.
    assert ids("created_after=1678-05-12T18:06:00%2B23:25") == {mine, theirs}
    assert_error(client.get(f"{API}/conversations/?created_after=0001-01-01T00:00:00%2B05:00"), 400)
    assert_error(client.get(f"{API}/conversations/?cursor=bogus"), 404)


def test_assign_by_email_or_id_then_filter_by_agent(tenant_a, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read", "conversations:write"])
    url = _url("/conversations/{id}/assign/", objects_a["conversation"])
    response = client.post(url, {"agent": "ACME-AGENT@example.com"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "with_agent"
    assert body["assigned_agent"]["id"] == tenant_a.agent.pk
    response = client.post(url, {"agent": str(tenant_a.admin.pk)}, format="json")
    assert response.json()["assigned_agent"]["email"] == tenant_a.admin.email
    listed = client.get(f"{API}/conversations/?assigned_agent={tenant_a.admin.email}").json()
    assert [c["id"] for c in listed["results"]] == [str(objects_a["conversation"].public_id)]
    assert (
        client.get(f"{API}/conversations/?assigned_agent=99999999999999999999").status_code == 200
    )


def test_assign_to_a_non_member_is_refused(tenant_a, tenant_b, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    url = _url("/conversations/{id}/assign/", objects_a["conversation"])
    for agent in (tenant_b.agent.email, str(tenant_b.agent.pk), tenant_a.outsider.email, "x"):
        error = assert_error(client.post(url, {"agent": agent}, format="json"), 400, "invalid")
        assert error["error"]["details"]["agent"]
    assert_error(client.post(url, {}, format="json"), 400, "invalid")
    _unchanged(tenant_a, objects_a)


def test_status_changes_and_resolve(tenant_a, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write", "conversations:read"])
    conversation = objects_a["conversation"]
    url = _url("/conversations/{id}/", conversation)
    error = assert_error(client.patch(url, {"status": "with_agent"}, format="json"), 400)
    assert "assign" in error["error"]["message"]
    assert_error(client.patch(url, {"status": "waiting_for_human"}, format="json"), 400)
    assert_error(client.patch(url, {"status": "closed"}, format="json"), 400, "invalid")

    response = client.post(_url("/conversations/{id}/resolve/", conversation))
    assert response.status_code == 200 and response.json()["status"] == "resolved"
    assert response.json()["resolved_at"]
    assert (
        Event.objects.for_tenant(tenant_a.tenant)
        .filter(type=EventType.CONVERSATION_RESOLVED)
        .exists()
    )
    response = client.patch(url, {"status": "open"}, format="json")
    assert response.json()["status"] == "open" and response.json()["resolved_at"] is None
    response = client.patch(url, {"status": "resolved"}, format="json")
    assert response.json()["status"] == "resolved"
    assert_error(client.put(url, {"status": "open"}, format="json"), 405)


def test_messages_list_oldest_first_with_filters(tenant_a, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    url = _url("/conversations/{id}/messages/", objects_a["conversation"])
    results = client.get(url).json()["results"]
    assert [m["role"] for m in results] == ["customer", "assistant"]
    assert results[1]["content"] == "It ships tomorrow." and results[1]["citations"] == []
    only = client.get(f"{url}?role=assistant").json()["results"]
    assert [m["id"] for m in only] == [objects_a["answer"].pk]
    after = client.get(f"{url}?after={objects_a['question'].pk}").json()["results"]
    assert [m["id"] for m in after] == [objects_a["answer"].pk]
    assert_error(client.get(f"{url}?role=robot"), 400)


async def _receive(layer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout=10)


def test_agent_reply_reaches_the_conversation_live(
    tenant_a, objects_a, api_key_for, django_capture_on_commit_callbacks
):
    conversation = objects_a["conversation"]
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    group = realtime.conversation_group(conversation.tenant_id, conversation.pk)
    async_to_sync(layer.group_add)(group, channel)
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    url = _url("/conversations/{id}/messages/", conversation)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                url, {"content": "Hi, I'm Ann.", "agent": tenant_a.agent.email}, format="json"
            )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["role"] == "agent" and body["author"]["id"] == tenant_a.agent.pk

        frames = []
        while not any(f["payload"]["type"] == "message" for f in frames):
            frames.append(async_to_sync(_receive)(layer, channel))
    finally:
        async_to_sync(layer.group_discard)(group, channel)
    frame = next(f["payload"] for f in frames if f["payload"]["type"] == "message")
    assert frame["message"]["id"] == body["id"]
    assert frame["message"]["content"] == "Hi, I'm Ann."

    stored = Message.objects.for_tenant(tenant_a.tenant).get(pk=body["id"])
    assert stored.conversation_id == conversation.pk and stored.author == tenant_a.agent
    event = Event.objects.for_tenant(tenant_a.tenant).filter(type=EventType.MESSAGE_CREATED).last()
    assert event.payload["message_id"] == body["id"] and event.payload["role"] == "agent"
    conversation.refresh_from_db()
    assert conversation.status == "with_agent" and conversation.assigned_agent == tenant_a.agent


def test_agent_reply_needs_an_agent_and_content(tenant_a, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    url = _url("/conversations/{id}/messages/", objects_a["conversation"])
    error = assert_error(client.post(url, {"content": "Hi"}, format="json"), 400, "invalid")
    assert "agent" in error["error"]["details"]
    assert_error(
        client.post(url, {"content": "  ", "agent": "acme-agent@example.com"}, "json"), 400
    )
    _unchanged(tenant_a, objects_a)
    # Once assigned, the assignee replies by default.
    chat.conversation_assign(conversation=objects_a["conversation"], agent=tenant_a.agent)
    response = client.post(url, {"content": "Hi"}, format="json")
    assert response.status_code == 201 and response.json()["author"]["id"] == tenant_a.agent.pk


# --- Contacts -----------------------------------------------------------------------------------


def test_contact_crud_and_contact_conversations(tenant_a, objects_a, api_key_for):
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

    conversations = client.get(_url("/contacts/{id}/conversations/", objects_a["contact"]))
    assert_error(conversations, 403)  # also needs conversations:read
    reader = api_key_for(tenant_a.tenant, scopes=["contacts:read", "conversations:read"])
    conversations = reader.get(_url("/contacts/{id}/conversations/", objects_a["contact"]))
    assert [c["id"] for c in conversations.json()["results"]] == [
        str(objects_a["conversation"].public_id)
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


def test_contact_external_id_is_unique_per_tenant(tenant_a, objects_a, api_key_for):
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


# --- Feedback and ask ---------------------------------------------------------------------------


def test_feedback_thumbs_and_csat(tenant_a, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write", "conversations:read"])
    conversation_id = str(objects_a["conversation"].public_id)
    body = {"conversation_id": conversation_id, "message_id": objects_a["answer"].pk}
    response = client.post(f"{API}/feedback/", {**body, "rating": "up"}, format="json")
    assert response.status_code == 201, response.content
    assert (
        response.json()["kind"] == "thumbs" and response.json()["message_id"] == body["message_id"]
    )
    response = client.post(
        f"{API}/feedback/", {"conversation_id": conversation_id, "rating": "2"}, "json"
    )
    assert response.json()["kind"] == "csat" and response.json()["rating"] == "2"
    assert Feedback.objects.for_tenant(tenant_a.tenant).count() == 2  # CSAT replaced
    events = Event.objects.for_tenant(tenant_a.tenant).filter(type=EventType.FEEDBACK_RECEIVED)
    assert events.count() == 3  # the fixture's, thumbs, CSAT
    listed = client.get(f"{API}/feedback/?kind=thumbs").json()["results"]
    assert [f["rating"] for f in listed] == ["up"]
    assert client.get(f"{API}/conversations/?rating=up").json()["results"][0]["id"] == (
        conversation_id
    )

    question = {**body, "message_id": objects_a["question"].pk, "rating": "up"}
    assert_error(client.post(f"{API}/feedback/", question, format="json"), 400)
    assert_error(client.post(f"{API}/feedback/", {**body, "rating": "7"}, "json"), 400)
    missing = {**body, "message_id": 2**62, "rating": "up"}
    assert_error(client.post(f"{API}/feedback/", missing, format="json"), 400)
    assert_error(client.post(f"{API}/feedback/", {**body, "rating": "3"}, "json"), 400)


# The answer flow runs database work through channels' database_sync_to_async, which
# closes connections: these tests need real transactions.
@pytest.mark.django_db(transaction=True)
def test_ask_answers_with_citations_in_a_new_api_conversation(tenant_a, api_key_for, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: extractive fallback
    ingest_text(tenant=tenant_a.tenant, title="Returns", text=RETURNS, url="https://a.example/r")
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    response = client.post(f"{API}/ask/", {"question": "How long do I have to return?"}, "json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["decision"] in {"answer", "extractive"} and not body["handed_off"]
    assert body["question"]["role"] == "customer"
    answer = body["answer"]
    assert answer["role"] == "assistant" and answer["status"] == "complete"
    assert "30 days" in answer["content"]
    assert answer["citations"][0]["title"] == "Returns"
    assert answer["citations"][0]["url"] == "https://a.example/r"
    conversation = Conversation.objects.for_tenant(tenant_a.tenant).get(
        public_id=body["conversation_id"]
    )
    assert conversation.channel == "api"
    assert conversation.messages.count() == 2

    # A follow-up in the same conversation; then a person takes it and the assistant stops.
    follow_up = {"question": "And the label?", "conversation_id": body["conversation_id"]}
    assert client.post(f"{API}/ask/", follow_up, format="json").status_code == 200
    assert conversation.messages.count() == 4
    chat.conversation_assign(conversation=conversation, agent=tenant_a.agent)
    assert_error(client.post(f"{API}/ask/", follow_up, format="json"), 409, "conflict")
    assert_error(client.post(f"{API}/ask/", {"question": " "}, format="json"), 400)


# The answer flow runs database work through channels' database_sync_to_async, which
# closes connections: these tests need real transactions.
@pytest.mark.django_db(transaction=True)
def test_ask_with_nothing_relevant_offers_a_person_or_hands_off(tenant_a, api_key_for, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    # The default: say the help center has no answer and offer a person, without a handoff.
    response = client.post(f"{API}/ask/", {"question": "Can I pay in bitcoin?"}, "json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert not body["handed_off"] and body["conversation_status"] != "waiting_for_human"
    assert body["answer"]["content"] == prompts.NOT_FOUND_TEXT + prompts.OFFER_PERSON_TEXT
    assert body["answer"]["citations"] == []
    # A tenant that hands such questions to a person.
    tenant_a.tenant.unanswerable_action = "handoff"
    tenant_a.tenant.save(update_fields=["unanswerable_action"])
    response = client.post(f"{API}/ask/", {"question": "Can I pay in bitcoin?"}, "json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["handed_off"] and body["conversation_status"] == "waiting_for_human"
    assert body["answer"]["citations"] == []


# --- Knowledge ------------------------------------------------------------------------------------


def test_text_source_create_list_sync_and_delete(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write", "knowledge:read"])
    body = {"kind": "text", "name": "Returns", "text": RETURNS, "access_groups": ["vip"]}
    response = client.post(f"{API}/knowledge/sources/", body, format="json")
    assert response.status_code == 201, response.content
    source = response.json()
    assert source["status"] == "queued" and source["access_groups"] == ["vip"]
    assert [s["id"] for s in client.get(f"{API}/knowledge/sources/?kind=text").json()["results"]]
    assert client.get(f"{API}/knowledge/sources/?kind=url").json()["results"] == []
    url = f"{API}/knowledge/sources/{source['id']}/"
    assert client.post(f"{url}sync/").status_code == 202
    assert client.delete(url).status_code == 204
    assert not Source.objects.for_tenant(tenant_a.tenant).exists()


def test_url_and_upload_sources(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write"])
    response = client.post(
        f"{API}/knowledge/sources/",
        {"kind": "url", "name": "Help", "url": "https://help.example.com/returns"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["kind"] == "url"
    upload = SimpleUploadedFile("faq.md", RETURNS.encode(), content_type="text/markdown")
    response = client.post(
        f"{API}/knowledge/sources/", {"name": "FAQ", "upload": upload}, format="multipart"
    )
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "upload" and response.json()["filename"] == "faq.md"


def test_documents_list_filter_and_delete(tenant_a, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write", "knowledge:read"])
    source_id = objects_a["source"].public_id
    listed = client.get(f"{API}/knowledge/documents/?source={source_id}").json()["results"]
    assert [d["id"] for d in listed] == [str(objects_a["document"].public_id)]
    assert listed[0]["source_id"] == str(source_id)
    assert client.delete(f"{API}/knowledge/documents/{listed[0]['id']}/").status_code == 204
    assert not Document.objects.for_tenant(tenant_a.tenant).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "text", "name": "T"},
        {"kind": "text", "name": "T", "text": "   "},
        {"kind": "url", "name": "U", "url": "ftp://example.com/x"},
        {"kind": "url", "name": "U", "url": "javascript:alert(1)"},
        {"kind": "sitemap", "name": "S"},
        {"kind": "upload", "name": "F"},
        {"kind": "text", "name": "", "text": "x"},
        {"kind": "text", "name": "T", "text": "x", "max_pages": 0},
        {"kind": "text", "name": "T", "text": "x", "access_groups": ["*"]},
        {"kind": "text", "name": "T", "text": "x", "access_groups": "vip"},
    ],
)
def test_source_validation_errors(tenant_a, api_key_for, body):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write"])
    assert_error(client.post(f"{API}/knowledge/sources/", body, format="json"), 400)
    assert not Source.objects.for_tenant(tenant_a.tenant).exists()


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("empty.md", b"", "text/markdown"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "image/png"),
        ("big.txt", b"a" * 3000, "text/plain"),
    ],
)
def test_upload_validation_uses_the_pipeline_limits(
    tenant_a, api_key_for, settings, name, data, content_type
):
    settings.KNOWLEDGE_UPLOAD_MAX_BYTES = 2048
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write"])
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    response = client.post(
        f"{API}/knowledge/sources/", {"name": "F", "upload": upload}, format="multipart"
    )
    assert_error(response, 400)
    assert not Source.objects.for_tenant(tenant_a.tenant).exists()


def test_repeated_source_post_with_idempotency_key_creates_one(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write"])
    body = {"kind": "text", "name": "Returns", "text": RETURNS}
    for _ in range(2):
        response = client.post(
            f"{API}/knowledge/sources/", body, format="json", HTTP_IDEMPOTENCY_KEY="src-1"
        )
        assert response.status_code == 201
    assert response["Idempotent-Replayed"] == "true"
    assert Source.objects.for_tenant(tenant_a.tenant).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "x", "limit": 0},
        {"query": "x", "limit": 51},
        {"query": "x", "mode": "magic"},
        {"query": "x", "access_groups": "vip"},
        {"limit": 3},
    ],
)
def test_search_validation_errors(tenant_a, api_key_for, body):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:read"])
    assert_error(client.post(f"{API}/search/", body, format="json"), 400, "invalid")


# --- Analytics ------------------------------------------------------------------------------------


def test_analytics_summary_sums_the_daily_rollups(tenant_a, tenant_b, objects_a, api_key_for):
    today = timezone.localdate()
    rollup_compute(tenant=tenant_a.tenant, day=today)
    _world_objects(tenant_b, "bluebird")
    rollup_compute(tenant=tenant_b.tenant, day=today)
    client = api_key_for(tenant_a.tenant, scopes=["analytics:read"])
    response = client.get(f"{API}/analytics/summary/?from={today}&to={today}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["days_with_data"] == 1
    totals = body["totals"]
    assert totals["conversations_started"] == 1  # tenant B's are not counted
    assert totals["messages_customer"] == 1 and totals["csat_count"] == 1
    assert totals["csat_average"] == 4.0
    assert body["daily"][0]["day"] == str(today)
    earlier = today - dt.timedelta(days=10)
    response = client.get(f"{API}/analytics/summary/?to={earlier}")
    assert response.json()["days_with_data"] == 0
    assert_error(client.get(f"{API}/analytics/summary/?from={today}&to={earlier}"), 400)
    assert_error(client.get(f"{API}/analytics/summary/?from=2020-01-01&to={today}"), 400)
    assert_error(client.get(f"{API}/analytics/summary/?from=soon"), 400, "invalid")
