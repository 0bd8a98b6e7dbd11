"""Automatic assignment end to end over the real websockets (PostgreSQL, Redis channel layer):
two agents' consoles and one customer's widget."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.conversations.models import Conversation, ConversationStatus
from apps.tenants.models import Role
from apps.tenants.services import membership_set
from apps.tenants.tests.factories import UserFactory
from apps.workspace import assignment, inbox_settings, selectors, services
from apps.workspace.models import AgentPresence, AssignmentMode, PresenceStatus
from tests.support.chat import chat_settings, console_socket, open_chat, receive_until  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("chat_settings")]


@sync_to_async
def db(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def _setup(world):
    inbox = inbox_settings.inbox_update(
        inbox=selectors.inbox_default(tenant=world.tenant), assignment=AssignmentMode.ROUND_ROBIN
    )
    agents = []
    for n in (1, 2):
        user = UserFactory(username=f"live-agent{n}", display_name=f"Agent {n}", is_staff=True)
        membership_set(tenant=world.tenant, user=user, role=Role.AGENT)
        services.inbox_grant(inbox=inbox, agent=user)
        agents.append(user)
    return agents


async def _console(user):
    socket = await console_socket(user, "acme")
    connected, _ = await socket.connect(timeout=10)
    assert connected
    assert (await socket.receive_json_from(timeout=10))["type"] == "ready"
    return socket


async def _queue_frame(socket, event):
    while True:
        frame = await socket.receive_json_from(timeout=10)
        if frame["type"] == "queue" and frame["event"] == event:
            return frame


async def test_handoff_goes_to_an_online_agent_and_passes_on_when_they_leave(
    tenant_a, monkeypatch, settings
):
    first, second = await db(_setup, tenant_a)
    first_console = await _console(first)
    second_console = await _console(second)
    presences = await db(
        lambda: set(
            AgentPresence.objects.for_tenant(tenant_a.tenant)
            .filter(status=PresenceStatus.ONLINE)
            .values_list("user_id", flat=True)
        )
    )
    assert presences == {first.pk, second.pk}

    customer, _ = await open_chat(tenant_a)
    await customer.send_json_to({"type": "handoff"})
    _, joined = await receive_until(customer, "agent_joined", timeout=10)
    # Round robin starts with the agent never assigned before (lowest id on a tie).
    assert joined["agent"]["name"] == "Agent 1"
    # The other agent's console sees it assigned, to whom.
    frame = await _queue_frame(second_console, "assigned")
    assert frame["conversation"]["agent"] == "Agent 1"
    assert frame["conversation"]["status"] == ConversationStatus.WITH_AGENT

    # The first agent's console closes; after the grace period the sweep passes it on.
    # (First, the console's own switch answers with the state it set.)
    await first_console.send_json_to({"type": "presence", "status": "online"})
    while (ack := await first_console.receive_json_from(timeout=10))["type"] != "presence":
        pass
    assert ack["status"] == "online"
    await first_console.disconnect()
    later = timezone.now() + timedelta(seconds=settings.AGENT_PRESENCE_GRACE_SECONDS + 1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    await db(assignment.agent_presence_seen, tenant=tenant_a.tenant, user=second)  # its heartbeat
    assert await db(assignment.presence_sweep) == 1
    _, joined = await receive_until(customer, "agent_joined", timeout=10)
    assert joined["agent"]["name"] == "Agent 2"
    conversation = await db(
        lambda: Conversation.objects.for_tenant(tenant_a.tenant).get(
            public_id=frame["conversation"]["id"]
        )
    )
    assert conversation.assigned_agent_id == second.pk
    for socket in (second_console, customer):
        await socket.disconnect()


async def test_a_burst_of_messages_within_the_debounce_gets_one_answer(tenant_a, settings):
    from apps.conversations.models import Message, MessageRole
    from tests.support.chat import drain, receive_answer

    settings.CHAT_BURST_DEBOUNCE_MS = 400
    customer, _ = await open_chat(tenant_a)
    for n, text in enumerate(["hi", "my order 1042", "has not arrived"]):
        await customer.send_json_to({"type": "message", "client_id": f"c-{n}", "text": text})
    _, done = await receive_answer(customer, timeout=30)
    assert done["message"]["content"] == "Echo: hi\nmy order 1042\nhas not arrived"
    frames = await drain(customer, quiet=1.0)
    assert not [f for f in frames if f["type"] == "message_done"]
    answers = await db(
        lambda: (
            Message.objects.for_tenant(tenant_a.tenant).filter(role=MessageRole.ASSISTANT).count()
        )
    )
    assert answers == 1
    # Later, one message on its own is answered on its own.
    await customer.send_json_to({"type": "message", "client_id": "c-9", "text": "thanks"})
    _, done = await receive_answer(customer, timeout=30)
    assert done["message"]["content"] == "Echo: thanks"
    await customer.disconnect()


async def test_widget_learns_the_team_is_away_for_the_inbox_its_conversation_would_go_to(
    tenant_a,
):
    import datetime as dt

    def setup():
        today = dt.datetime.now(dt.UTC).date()
        closed = inbox_settings.inbox_update(
            inbox=selectors.inbox_default(tenant=tenant_a.tenant),
            office_hours={"mon": [["09:00", "10:00"]]},
            holidays=[today.isoformat(), (today + dt.timedelta(days=1)).isoformat()],
        )
        always = services.inbox_create(tenant=tenant_a.tenant, name="Always in")
        inbox_settings.routing_rule_create(
            tenant=tenant_a.tenant, name="Docs", url_contains="/docs", inbox=always
        )
        return closed

    await db(setup)
    away, ready = await open_chat(tenant_a, page="https://acme.example.com/shop")
    assert ready["team"]["available"] is False
    back = dt.datetime.fromisoformat(ready["team"]["back_at"])
    assert back > dt.datetime.now(dt.UTC) and back.weekday() == 0 and back.hour == 9
    # A page a rule routes to an inbox without office hours: nothing to show.
    docs, ready = await open_chat(tenant_a, page="https://acme.example.com/docs/setup")
    assert "team" not in ready
    for socket in (away, docs):
        await socket.disconnect()
