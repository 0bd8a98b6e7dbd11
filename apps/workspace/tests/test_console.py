"""The live agent console: page, JSON endpoints and websocket, against PostgreSQL and Redis.

The customer side is the real chat websocket (echo assistant, no model).
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from apps.conversations import services as chat
from apps.conversations.models import ConversationStatus, Message, MessageRole
from apps.tenants.models import Role
from apps.tenants.services import membership_set
from apps.tenants.tests.factories import UserFactory
from apps.workspace import selectors, services
from supportai.routing import websocket_urlpatterns
from tests.support.chat import (  # noqa: F401
    SITE_ORIGIN,
    chat_settings,
    console_socket,
    drain,
    open_chat,
    receive_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("chat_settings")]

application = URLRouter(websocket_urlpatterns)


@sync_to_async
def db(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def _grant_default(world, user):
    services.inbox_grant(inbox=selectors.inbox_default(tenant=world.tenant), agent=user)


def _second_agent(world):
    user = UserFactory(username=f"{world.tenant.slug}-agent2")
    membership_set(tenant=world.tenant, user=user, role=Role.AGENT)
    return user


def _waiting(world, text="My bike arrived broken"):
    conversation = chat.conversation_start(tenant=world.tenant, widget_key=world.widget_key)
    chat.message_post_customer(conversation=conversation, text=text)
    chat.handoff_request(conversation=conversation, reason="customer_request")
    conversation.refresh_from_db()
    return conversation


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(conversation, name="conversation", slug=None):
    return reverse(
        f"workspace:{name}",
        kwargs={
            "slug": slug or conversation.tenant.slug,
            "conversation_id": conversation.public_id,
        },
    )


def _post(client, url, body=None):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


# --- Page and endpoints ---------------------------------------------------------------------------


def test_console_requires_login_and_a_staff_membership(client, tenant_a):
    assert client.get("/console/").status_code == 302
    assert "/admin/login/" in client.get("/console/acme/")["Location"]
    client.force_login(tenant_a.outsider)
    assert client.get("/console/").status_code == 403
    assert client.get("/console/acme/").status_code == 404


def test_agent_without_grant_sees_no_queue_and_cannot_take_over(tenant_a):
    conversation = _waiting(tenant_a)
    client = _client(tenant_a.agent)
    page = client.get("/console/acme/")
    assert page.status_code == 200
    assert str(conversation.public_id) not in page.content.decode()
    assert client.get(reverse("workspace:queue", args=["acme"])).json() == {"conversations": []}
    assert client.get(_api(conversation)).status_code == 404
    assert _post(client, _api(conversation, "take_over")).status_code == 404
    assert _post(client, _api(conversation, "reply"), {"content": "hi"}).status_code == 404
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WAITING_FOR_HUMAN


def test_granted_agent_sees_the_queue_and_the_transcript(tenant_a):
    conversation = _waiting(tenant_a)
    _grant_default(tenant_a, tenant_a.agent)
    client = _client(tenant_a.agent)
    assert str(conversation.public_id) in client.get("/console/acme/").content.decode()
    data = client.get(_api(conversation)).json()
    assert data["status"] == "waiting_for_human"
    assert data["messages"][0]["role"] == "customer"


@pytest.mark.parametrize("who", ["owner", "admin", "agent", "outsider"])
def test_other_tenants_people_get_nothing_from_tenant_a_console(tenant_a, tenant_b, who):
    conversation = _waiting(tenant_a)
    client = _client(getattr(tenant_b, who))
    assert client.get("/console/acme/").status_code == 404
    assert client.get(reverse("workspace:queue", args=["acme"])).status_code == 404
    assert client.get(_api(conversation)).status_code == 404
    # Naming their own tenant in the URL does not reach tenant A's conversation either.
    if who != "outsider":
        assert client.get(_api(conversation, slug="bluebird")).status_code == 404
        assert _post(client, _api(conversation, "take_over", slug="bluebird")).status_code == 404
    assert _post(client, _api(conversation, "take_over")).status_code == 404


def test_second_agents_take_over_is_refused_with_a_clear_message(tenant_a):
    conversation = _waiting(tenant_a)
    second = _second_agent(tenant_a)
    _grant_default(tenant_a, tenant_a.agent)
    _grant_default(tenant_a, second)
    first_client, second_client = _client(tenant_a.agent), _client(second)
    assert _post(first_client, _api(conversation, "take_over")).status_code == 200
    refused = _post(second_client, _api(conversation, "take_over"))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "already_taken"
    assert tenant_a.agent.name in refused.json()["error"]["message"]
    # Nor can the second agent reply, hand back or resolve in the first agent's conversation.
    assert _post(second_client, _api(conversation, "reply"), {"content": "x"}).status_code == 409
    assert _post(second_client, _api(conversation, "hand_back")).status_code == 409
    conversation.refresh_from_db()
    assert conversation.assigned_agent_id == tenant_a.agent.pk
    # Taking over again is harmless for the agent who has it.
    assert _post(first_client, _api(conversation, "take_over")).status_code == 200


# --- Live: customer widget and console socket -----------------------------------------------------


async def test_take_over_and_reply_reach_the_customer_live_and_the_assistant_stays_silent(
    tenant_a,
):
    await db(_grant_default, tenant_a, tenant_a.agent)
    customer, _ = await open_chat(tenant_a)
    await customer.send_json_to({"type": "handoff"})
    _, status = await receive_until(customer, "status", timeout=10)
    conversation_id = status["conversation_id"]
    await receive_until(customer, "handoff", timeout=10)
    conversation = await db(
        selectors.conversation_visible_get,
        user=tenant_a.agent,
        tenant=tenant_a.tenant,
        public_id=conversation_id,
    )
    client = await db(_client, tenant_a.agent)
    response = await db(_post, client, _api(conversation, "take_over"))
    assert response.status_code == 200
    _, joined = await receive_until(customer, "agent_joined", timeout=10)
    assert joined["agent"]["name"] == tenant_a.agent.name

    response = await db(_post, client, _api(conversation, "reply"), {"content": "Hi, I'm on it."})
    assert response.status_code == 201
    _, frame = await receive_until(customer, "message", timeout=10)
    assert frame["message"]["role"] == "agent"
    assert frame["message"]["content"] == "Hi, I'm on it."

    # The customer writes; the (echo) assistant must not answer while an agent has it.
    await customer.send_json_to({"type": "message", "client_id": "c-1", "text": "Thanks!"})
    await receive_until(customer, "message", timeout=10)
    frames = await drain(customer, quiet=1.0)
    assert not [f for f in frames if f["type"] in {"token", "message_done"}]
    roles = await db(
        lambda: list(
            Message.objects.for_tenant(tenant_a.tenant)
            .filter(conversation=conversation)
            .values_list("role", flat=True)
        )
    )
    assert MessageRole.ASSISTANT not in roles
    assert roles.count(MessageRole.AGENT) == 1

    # Handing back: the widget is told, and the assistant answers again.
    response = await db(_post, client, _api(conversation, "hand_back"))
    assert response.status_code == 200 and response.json()["status"] == "open"
    _, status = await receive_until(customer, "status", timeout=10)
    assert status["status"] == "open"
    await customer.send_json_to({"type": "message", "client_id": "c-2", "text": "One more"})
    _, done = await receive_until(customer, "message_done", timeout=20)
    assert done["message"]["content"] == "Echo: One more"

    response = await db(_post, client, _api(conversation, "resolve"))
    assert response.json()["status"] == "resolved"
    _, status = await receive_until(customer, "status", timeout=10)
    assert status["status"] == "resolved"
    await customer.disconnect()


async def test_console_socket_notifies_granted_agents_only(tenant_a):
    second = await db(_second_agent, tenant_a)
    await db(_grant_default, tenant_a, tenant_a.agent)
    granted = await console_socket(tenant_a.agent, "acme")
    ungranted = await console_socket(second, "acme")
    for socket in (granted, ungranted):
        connected, _ = await socket.connect(timeout=10)
        assert connected
        assert (await socket.receive_json_from(timeout=10))["type"] == "ready"
    conversation = await db(_waiting, tenant_a, "Please call me")
    frame = await granted.receive_json_from(timeout=10)
    assert frame["type"] == "queue" and frame["event"] == "waiting"
    assert frame["conversation"]["id"] == str(conversation.public_id)
    assert frame["conversation"]["last_customer_message"] == "Please call me"
    assert await ungranted.receive_nothing(timeout=1.0)
    # Watching: the agent sees the customer's messages live; the ungranted one may not watch.
    await ungranted.send_json_to({"type": "watch", "conversation_id": str(conversation.public_id)})
    assert (await ungranted.receive_json_from(timeout=10))["code"] == "not_found"
    await granted.send_json_to({"type": "watch", "conversation_id": str(conversation.public_id)})
    assert (await granted.receive_json_from(timeout=10))["type"] == "watching"
    await db(chat.message_post_customer, conversation=conversation, text="Still there?")
    while True:
        frame = await granted.receive_json_from(timeout=10)
        if frame["type"] == "chat" and frame["frame"]["type"] == "message":
            break
    assert frame["frame"]["message"]["content"] == "Still there?"
    assert await ungranted.receive_nothing(timeout=0.5)
    # Agent typing reaches the customer's group as role "agent".
    customer, _ = await open_chat(tenant_a, conversation=str(conversation.public_id))
    await granted.send_json_to({"type": "typing", "active": True})
    _, typing = await receive_until(customer, "typing", timeout=10)
    assert typing["role"] == "agent" and typing["active"] is True
    for socket in (granted, ungranted, customer):
        await socket.disconnect()


@pytest.mark.parametrize("who", ["owner", "agent", "outsider"])
async def test_other_tenants_people_cannot_open_tenant_a_console_socket(tenant_a, tenant_b, who):
    socket = await console_socket(getattr(tenant_b, who), "acme")
    connected, code = await socket.connect(timeout=10)
    assert not connected and code == 4403
    await socket.disconnect()


async def test_console_socket_refuses_anonymous_and_foreign_origins(tenant_a):
    socket = WebsocketCommunicator(
        application, "/ws/console/?tenant=acme", headers=[(b"origin", SITE_ORIGIN)]
    )
    connected, _ = await socket.connect(timeout=10)
    assert not connected
    socket = await console_socket(tenant_a.owner, "acme", origin=b"https://evil.example.com")
    connected, _ = await socket.connect(timeout=10)
    assert not connected
    socket = await console_socket(tenant_a.owner, "acme", origin=None)
    connected, _ = await socket.connect(timeout=10)
    assert not connected
