"""Office hours, the email address asked for out of hours, and email to agents who are away.

Real PostgreSQL, frozen time, and a real SMTP server on loopback (Django's SMTP backend talks
to it over TCP; not the locmem backend).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.conversations import services as chat
from apps.conversations.access import customer_message_post
from apps.conversations.models import Conversation, ConversationStatus, Message, MessageRole
from apps.core.errors import ApplicationError
from apps.workspace import assignment, handoff, inbox_settings, office_hours, selectors, services
from apps.workspace.models import AssignmentMode, ConversationInbox

pytestmark = pytest.mark.django_db

BERLIN_WEEKDAYS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
# Saturday 1 August 2026, 10:00 UTC (12:00 in Berlin): closed until Monday 09:00 Berlin time.
SATURDAY = dt.datetime(2026, 8, 1, 10, 0, tzinfo=dt.UTC)
# Tuesday 4 August 2026, 10:00 UTC: open.
TUESDAY = dt.datetime(2026, 8, 4, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        now = SATURDAY

    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


def _berlin_inbox(world, **extra):
    inbox = selectors.inbox_default(tenant=world.tenant)
    return inbox_settings.inbox_update(
        inbox=inbox,
        time_zone="Europe/Berlin",
        office_hours=BERLIN_WEEKDAYS,
        assignment=AssignmentMode.ROUND_ROBIN,
        **extra,
    )


def _system_texts(conversation):
    return list(
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, role=MessageRole.SYSTEM)
        .order_by("id")
        .values_list("content", flat=True)
    )


def _handed_off(world, **start):
    conversation = chat.conversation_start(
        tenant=world.tenant, widget_key=world.widget_key, **start
    )
    chat.message_post_customer(conversation=conversation, text="Help please")
    chat.handoff_request(conversation=conversation, reason="customer_request")
    conversation.refresh_from_db()
    return conversation


# --- The calendar -------------------------------------------------------------------------------


def test_open_and_next_opening_follow_the_inbox_time_zone_and_holidays(tenant_a):
    inbox = _berlin_inbox(tenant_a, holidays=["2026-08-03"])
    assert office_hours.is_open(inbox, TUESDAY)
    # 16:30 UTC is 18:30 in Berlin (summer time): closed.
    assert not office_hours.is_open(inbox, TUESDAY.replace(hour=16, minute=30))
    assert not office_hours.is_open(inbox, SATURDAY)
    # Monday 3 August is a holiday, so the team is back on Tuesday at 09:00 Berlin time.
    back = office_hours.next_open(inbox, SATURDAY)
    assert back.isoformat() == "2026-08-04T09:00:00+02:00"
    assert (
        office_hours.describe(back, now=SATURDAY) == "on Tuesday 4 August at 09:00 (Europe/Berlin)"
    )
    always = services.inbox_create(tenant=tenant_a.tenant, name="Always")
    assert office_hours.is_open(always, SATURDAY)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time_zone", "Mars/Olympus"),
        ("office_hours", {"monday": [["09:00", "17:00"]]}),
        ("office_hours", {"mon": [["17:00", "09:00"]]}),
        ("office_hours", {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}),
        ("office_hours", {"mon": [["9am", "5pm"]]}),
        ("holidays", ["25/12/2026"]),
    ],
)
def test_bad_office_hours_are_refused(tenant_a, field, value):
    inbox = selectors.inbox_default(tenant=tenant_a.tenant)
    with pytest.raises(ApplicationError):
        inbox_settings.inbox_update(inbox=inbox, **{field: value})


# --- Out of hours ---------------------------------------------------------------------------------


def test_out_of_hours_handoff_says_when_the_team_is_back_and_waits_unassigned(tenant_a, clock):
    inbox = _berlin_inbox(tenant_a)
    services.inbox_grant(inbox=inbox, agent=tenant_a.agent)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=tenant_a.agent)
    conversation = _handed_off(tenant_a)
    assert conversation.status == ConversationStatus.WAITING_FOR_HUMAN
    assert conversation.assigned_agent is None
    (notice,) = _system_texts(conversation)
    assert "back on Monday 3 August at 09:00 (Europe/Berlin)" in notice
    assert "email address" in notice
    assert not handoff.team_available(conversation=conversation)


def test_email_address_left_out_of_hours_is_validated_and_stored(tenant_a, clock):
    _berlin_inbox(tenant_a)
    conversation = _handed_off(tenant_a)
    customer_message_post(conversation, "It is bob@nowhere", "c-1")
    conversation.refresh_from_db()
    assert conversation.reply_email == ""
    assert "does not look right" in _system_texts(conversation)[-1]
    _, _, needs_answer = customer_message_post(conversation, "Sure: Bob.Smith@Example.com.", "c-2")
    assert not needs_answer
    conversation.refresh_from_db()
    assert conversation.reply_email == "bob.smith@example.com"
    assert "bob.smith@example.com" in _system_texts(conversation)[-1]
    route = ConversationInbox.objects.for_tenant(tenant_a.tenant).get(conversation=conversation)
    assert not route.awaiting_email
    # Asked once: later messages with addresses are just messages for the team.
    customer_message_post(conversation, "or alice@example.com", "c-3")
    conversation.refresh_from_db()
    assert conversation.reply_email == "bob.smith@example.com"


def test_known_email_is_not_asked_for_again(tenant_a, clock):
    _berlin_inbox(tenant_a)
    contact = chat.contact_get_or_create(
        tenant=tenant_a.tenant, external_id="crm-9", email="known@example.com"
    )
    conversation = _handed_off(tenant_a, contact=contact)
    (notice,) = _system_texts(conversation)
    assert "known@example.com" in notice and "Leave your email" not in notice


def test_within_hours_the_handoff_is_assigned_as_usual(tenant_a, clock):
    clock.now = TUESDAY
    inbox = _berlin_inbox(tenant_a)
    services.inbox_grant(inbox=inbox, agent=tenant_a.agent)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=tenant_a.agent)
    conversation = _handed_off(tenant_a)
    assert conversation.assigned_agent == tenant_a.agent
    assert _system_texts(conversation) == []


# --- Email to agents who are away -----------------------------------------------------------------


def test_agent_assigned_while_away_gets_an_email_through_smtp(
    tenant_a, api_key_for, smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    services.inbox_grant(
        inbox=selectors.inbox_default(tenant=tenant_a.tenant), agent=tenant_a.agent
    )
    conversation = _handed_off(tenant_a)
    api = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/v1/conversations/{conversation.public_id}/assign/",
            {"agent": tenant_a.agent.email},
            format="json",
        )
    assert response.status_code == 200
    (mail,) = smtp_server.received
    assert mail["to"] == [tenant_a.agent.email]
    assert "Subject: [Acme Anvils] A conversation was assigned to you" in mail["data"]
    assert f"/console/acme/?conversation={conversation.public_id}" in mail["data"]
    assert "Help please" in mail["data"]


def test_agent_at_the_console_gets_no_email(
    tenant_a, smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    services.inbox_grant(
        inbox=selectors.inbox_default(tenant=tenant_a.tenant), agent=tenant_a.agent
    )
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=tenant_a.agent)
    conversation = _handed_off(tenant_a)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversations_assign_bulk(
            conversations=[conversation], agent=tenant_a.agent, by=tenant_a.admin
        )
    assert Conversation.objects.for_tenant(tenant_a.tenant).get(pk=conversation.pk).assigned_agent
    assert smtp_server.received == []


def test_waiting_out_of_hours_is_assigned_once_the_team_is_back(tenant_a, clock):
    inbox = _berlin_inbox(tenant_a)
    services.inbox_grant(inbox=inbox, agent=tenant_a.agent)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=tenant_a.agent)
    conversation = _handed_off(tenant_a)
    assignment.presence_sweep()
    conversation.refresh_from_db()
    assert conversation.assigned_agent is None
    clock.now = dt.datetime(2026, 8, 3, 7, 30, tzinfo=dt.UTC)  # Monday 09:30 in Berlin
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=tenant_a.agent)
    assignment.presence_sweep()
    conversation.refresh_from_db()
    assert conversation.assigned_agent == tenant_a.agent
