"""The conversations API: list filters, assignment, status changes, messages, and an agent's
reply reaching the conversation live. Isolation, scopes and dead keys for every endpoint:
tests/test_api_isolation.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from apps.conversations import services as chat
from apps.conversations.models import Message
from apps.core import realtime
from apps.events.models import Event, EventType
from tests.support.api import API, api_url, assert_error, assert_unchanged
from tests.support.knowledge import knowledge_store  # noqa: F401

pytestmark = pytest.mark.usefixtures("fresh_cache", "knowledge_store")


def test_conversation_list_filters(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    other = chat.conversation_start(tenant=tenant_a.tenant, channel="api")
    chat.handoff_request(conversation=other, reason="low_confidence")
    conversation = resources_a["conversation"]

    def ids(query: str) -> set[str]:
        response = client.get(f"{API}/conversations/?{query}")
        assert response.status_code == 200, response.content
        return {c["id"] for c in response.json()["results"]}

    mine, theirs = str(conversation.public_id), str(other.public_id)
    assert ids("") == {mine, theirs}
    assert ids("status=waiting_for_human") == {theirs}
    assert ids("channel=api") == {theirs}
    assert ids("contact_external_id=crm-acme") == {mine}
    assert ids(f"contact={resources_a['contact'].public_id}") == {mine}
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


def test_assign_by_email_or_id_then_filter_by_agent(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read", "conversations:write"])
    url = api_url("/conversations/{id}/assign/", resources_a["conversation"])
    response = client.post(url, {"agent": "ACME-AGENT@example.com"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "with_agent"
    assert body["assigned_agent"]["id"] == tenant_a.agent.pk
    response = client.post(url, {"agent": str(tenant_a.admin.pk)}, format="json")
    assert response.json()["assigned_agent"]["email"] == tenant_a.admin.email
    listed = client.get(f"{API}/conversations/?assigned_agent={tenant_a.admin.email}").json()
    assert [c["id"] for c in listed["results"]] == [str(resources_a["conversation"].public_id)]
    assert (
        client.get(f"{API}/conversations/?assigned_agent=99999999999999999999").status_code == 200
    )


def test_assign_to_a_non_member_is_refused(tenant_a, tenant_b, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    url = api_url("/conversations/{id}/assign/", resources_a["conversation"])
    for agent in (tenant_b.agent.email, str(tenant_b.agent.pk), tenant_a.outsider.email, "x"):
        error = assert_error(client.post(url, {"agent": agent}, format="json"), 400, "invalid")
        assert error["error"]["details"]["agent"]
    assert_error(client.post(url, {}, format="json"), 400, "invalid")
    assert_unchanged(tenant_a, resources_a)


def test_status_changes_and_resolve(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write", "conversations:read"])
    conversation = resources_a["conversation"]
    url = api_url("/conversations/{id}/", conversation)
    error = assert_error(client.patch(url, {"status": "with_agent"}, format="json"), 400)
    assert "assign" in error["error"]["message"]
    assert_error(client.patch(url, {"status": "waiting_for_human"}, format="json"), 400)
    assert_error(client.patch(url, {"status": "closed"}, format="json"), 400, "invalid")

    response = client.post(api_url("/conversations/{id}/resolve/", conversation))
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


def test_messages_list_oldest_first_with_filters(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    url = api_url("/conversations/{id}/messages/", resources_a["conversation"])
    results = client.get(url).json()["results"]
    assert [m["role"] for m in results] == ["customer", "assistant"]
    assert results[1]["content"] == "It ships tomorrow." and results[1]["citations"] == []
    only = client.get(f"{url}?role=assistant").json()["results"]
    assert [m["id"] for m in only] == [resources_a["answer"].pk]
    after = client.get(f"{url}?after={resources_a['question'].pk}").json()["results"]
    assert [m["id"] for m in after] == [resources_a["answer"].pk]
    assert_error(client.get(f"{url}?role=robot"), 400)


async def _receive(layer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout=10)


def test_agent_reply_reaches_the_conversation_live(
    tenant_a, resources_a, api_key_for, django_capture_on_commit_callbacks
):
    conversation = resources_a["conversation"]
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    group = realtime.conversation_group(conversation.tenant_id, conversation.pk)
    async_to_sync(layer.group_add)(group, channel)
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    url = api_url("/conversations/{id}/messages/", conversation)
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
    assert frame["message"]["content"] == "Hi, I'm Ann."

    stored = Message.objects.for_tenant(tenant_a.tenant).get(pk=body["id"])
    assert stored.conversation_id == conversation.pk and stored.author == tenant_a.agent
    # The REST API names the message by its key, the chat frame by its number in the conversation.
    assert frame["message"]["id"] == stored.seq
    event = Event.objects.for_tenant(tenant_a.tenant).filter(type=EventType.MESSAGE_CREATED).last()
    assert event.payload["message_id"] == body["id"] and event.payload["role"] == "agent"
    conversation.refresh_from_db()
    assert conversation.status == "with_agent" and conversation.assigned_agent == tenant_a.agent


def test_agent_reply_needs_an_agent_and_content(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    url = api_url("/conversations/{id}/messages/", resources_a["conversation"])
    error = assert_error(client.post(url, {"content": "Hi"}, format="json"), 400, "invalid")
    assert "agent" in error["error"]["details"]
    assert_error(
        client.post(url, {"content": "  ", "agent": "acme-agent@example.com"}, "json"), 400
    )
    assert_unchanged(tenant_a, resources_a)
    # Once assigned, the assignee replies by default.
    chat.conversation_assign(conversation=resources_a["conversation"], agent=tenant_a.agent)
    response = client.post(url, {"content": "Hi"}, format="json")
    assert response.status_code == 201 and response.json()["author"]["id"] == tenant_a.agent.pk
