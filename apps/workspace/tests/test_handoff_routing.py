"""Handoff that a company controls: routing rules, presence and automatic assignment.

Real PostgreSQL; time is frozen (and moved by hand) where presence expiry matters.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from apps.conversations import services as chat
from apps.conversations.access import customer_message_post
from apps.conversations.models import (
    Conversation,
    ConversationStatus,
    HandoffReason,
    Message,
    MessageRole,
)
from apps.core.errors import ApplicationError, NotFoundError
from apps.events.models import Event, EventType
from apps.tenants.models import Role
from apps.tenants.services import membership_set
from apps.tenants.tests.factories import UserFactory
from apps.workspace import assignment, inbox_settings, selectors, services, sla
from apps.workspace.models import (
    AgentPresence,
    AssignmentMode,
    ConversationInbox,
    PresenceStatus,
    Priority,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    """Frozen time: `clock.advance(seconds)` moves it on; every `timezone.now()` sees it."""

    class Clock:
        now = timezone.now()

        def advance(self, seconds: float) -> None:
            self.now += timedelta(seconds=seconds)

    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


def _start(world, **kwargs):
    return chat.conversation_start(tenant=world.tenant, widget_key=world.widget_key, **kwargs)


def _inbox_of(conversation):
    conversation = Conversation.objects.for_tenant(conversation.tenant_id).get(pk=conversation.pk)
    return selectors.conversation_inbox(conversation=conversation)


def _agents(world, count, inbox):
    """`count` agents of the world's tenant, each granted `inbox`."""
    users = []
    for n in range(count):
        user = UserFactory(username=f"{world.tenant.slug}-rr{n}", display_name=f"Agent {n}")
        membership_set(tenant=world.tenant, user=user, role=Role.AGENT)
        services.inbox_grant(inbox=inbox, agent=user)
        users.append(user)
    return users


def _handed_off(world, text="I need help"):
    conversation = _start(world)
    chat.message_post_customer(conversation=conversation, text=text)
    chat.handoff_request(conversation=conversation, reason=HandoffReason.CUSTOMER_REQUEST)
    conversation.refresh_from_db()
    return conversation


# --- Rules ---------------------------------------------------------------------------------------


def test_rule_routes_by_page_url(tenant_a):
    sales = services.inbox_create(tenant=tenant_a.tenant, name="Sales")
    rule = inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant, name="Pricing page", url_contains="/Pricing", inbox=sales
    )
    on_pricing = _start(tenant_a, page_url="https://acme.example.com/pricing?plan=pro")
    on_docs = _start(tenant_a, page_url="https://acme.example.com/docs")
    assert _inbox_of(on_pricing) == sales
    assert (
        ConversationInbox.objects.for_tenant(tenant_a.tenant).get(conversation=on_pricing).rule
        == rule
    )
    assert _inbox_of(on_docs).is_default


def test_rule_routes_by_language_including_regional_variants(tenant_a):
    german = services.inbox_create(tenant=tenant_a.tenant, name="Deutsch")
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant, name="German", languages=["de"], inbox=german
    )
    assert _inbox_of(_start(tenant_a, language="de-AT")) == german
    assert _inbox_of(_start(tenant_a, language="de")) == german
    assert _inbox_of(_start(tenant_a, language="dk")).is_default


def test_rule_routes_by_token_field_and_groups(tenant_a):
    vip = services.inbox_create(tenant=tenant_a.tenant, name="VIP")
    partners = services.inbox_create(tenant=tenant_a.tenant, name="Partners")
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant,
        name="Enterprise plan",
        token_field="plan",
        token_values=["enterprise"],
        inbox=vip,
        priority=Priority.HIGH,
    )
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant,
        name="Partner group",
        token_field="groups",
        token_values=["partners"],
        inbox=partners,
    )
    enterprise = _start(tenant_a, claims={"sub": "u1", "plan": "Enterprise", "exp": 1})
    partner = _start(tenant_a, claims={"sub": "u2", "groups": ["staff", "partners"]})
    free = _start(tenant_a, claims={"sub": "u3", "plan": "free"})
    assert _inbox_of(enterprise) == vip
    route = ConversationInbox.objects.for_tenant(tenant_a.tenant).get(conversation=enterprise)
    assert route.priority == Priority.HIGH
    assert _inbox_of(partner) == partners
    assert _inbox_of(free).is_default
    # Only the token's own claims are kept for rules, not the standard ones.
    assert enterprise.context["claims"] == {"plan": "Enterprise"}


@pytest.mark.django_db(transaction=True)
def test_rule_on_a_keyword_forces_handoff_and_the_assistant_never_answers(tenant_a):
    from apps.assistant.services import answer_message

    billing = services.inbox_create(tenant=tenant_a.tenant, name="Billing")
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant,
        name="Billing disputes",
        keywords=["chargeback", "billing dispute"],
        inbox=billing,
        hand_off=True,
    )
    conversation = _start(tenant_a)
    assert _inbox_of(conversation).is_default  # no words yet: the keyword rule waits
    message, created, needs_answer = customer_message_post(
        conversation, "I opened a Billing Dispute with my bank", "c-1"
    )
    assert created and not needs_answer
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WAITING_FOR_HUMAN
    assert conversation.handoff_reason == HandoffReason.ROUTING_RULE
    assert _inbox_of(conversation) == billing
    assert (
        async_to_sync(answer_message)(conversation=conversation, message=message, access_groups=[])
        is None
    )
    roles = list(
        Message.objects.for_tenant(tenant_a.tenant)
        .filter(conversation=conversation)
        .values_list("role", flat=True)
    )
    assert roles == [MessageRole.CUSTOMER, MessageRole.SYSTEM]
    assert (
        Event.objects.for_tenant(tenant_a.tenant)
        .filter(type=EventType.HANDOFF_REQUESTED, payload__reason="routing_rule")
        .count()
        == 1
    )


def test_keywords_match_whole_words_only(tenant_a):
    billing = services.inbox_create(tenant=tenant_a.tenant, name="Billing")
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant, name="Refunds", keywords=["refund"], inbox=billing, hand_off=True
    )
    conversation = _start(tenant_a)
    _, _, needs_answer = customer_message_post(conversation, "Is it refundable?", "c-1")
    assert needs_answer
    assert _inbox_of(conversation).is_default


def test_rules_are_tried_in_order_and_inactive_ones_are_skipped(tenant_a):
    first = services.inbox_create(tenant=tenant_a.tenant, name="First")
    second = services.inbox_create(tenant=tenant_a.tenant, name="Second")
    off = inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant, name="Off", url_contains="/shop", inbox=second, position=0
    )
    inbox_settings.routing_rule_update(rule=off, is_active=False)
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant, name="Shop", url_contains="/shop", inbox=first, position=1
    )
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant, name="Everything", inbox=second, position=2
    )
    assert _inbox_of(_start(tenant_a, page_url="https://acme.example.com/shop")) == first
    assert _inbox_of(_start(tenant_a, page_url="https://acme.example.com/")) == second


def test_inbox_with_the_assistant_off_hands_off_at_once(tenant_a):
    humans = services.inbox_create(tenant=tenant_a.tenant, name="Humans only")
    inbox_settings.inbox_update(inbox=humans, assistant_enabled=False)
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant, name="Support site", url_contains="support.", inbox=humans
    )
    conversation = _start(tenant_a, page_url="https://support.acme.example.com/")
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WAITING_FOR_HUMAN
    _, _, needs_answer = customer_message_post(conversation, "Hello?", "c-1")
    assert not needs_answer


def test_rule_cannot_name_another_tenants_inbox_or_widget_key(tenant_a, tenant_b):
    theirs = selectors.inbox_default(tenant=tenant_b.tenant)
    with pytest.raises(NotFoundError):
        inbox_settings.routing_rule_create(tenant=tenant_a.tenant, name="x", inbox=theirs)
    with pytest.raises(NotFoundError):
        inbox_settings.routing_rule_create(
            tenant=tenant_a.tenant, name="x", widget_key=tenant_b.widget_key, hand_off=True
        )
    with pytest.raises(ApplicationError):
        inbox_settings.routing_rule_create(tenant=tenant_a.tenant, name="no action", keywords=["x"])


def test_a_routed_conversation_is_seen_only_by_agents_granted_that_inbox(tenant_a):
    billing = services.inbox_create(tenant=tenant_a.tenant, name="Billing")
    inbox_settings.routing_rule_create(tenant=tenant_a.tenant, name="All", inbox=billing)
    services.inbox_grant(
        inbox=selectors.inbox_default(tenant=tenant_a.tenant), agent=tenant_a.agent
    )
    conversation = _start(tenant_a)
    assert not selectors.can_work(user=tenant_a.agent, conversation=conversation)
    services.inbox_grant(inbox=billing, agent=tenant_a.agent)
    assert selectors.can_work(user=tenant_a.agent, conversation=conversation)


# --- Presence and assignment -----------------------------------------------------------------


def _auto_inbox(world, mode=AssignmentMode.ROUND_ROBIN, capacity=0):
    inbox = selectors.inbox_default(tenant=world.tenant)
    return inbox_settings.inbox_update(inbox=inbox, assignment=mode, agent_capacity=capacity)


def test_round_robin_among_online_agents_skips_away_ones(tenant_a, clock):
    inbox = _auto_inbox(tenant_a)
    first, second, away = _agents(tenant_a, 3, inbox)
    for agent in (first, second):
        assignment.agent_presence_seen(tenant=tenant_a.tenant, user=agent)
        clock.advance(1)
    assigned = []
    for _ in range(4):
        assigned.append(_handed_off(tenant_a).assigned_agent)
        clock.advance(1)
    assert assigned == [first, second, first, second]
    assert not Conversation.objects.for_tenant(tenant_a.tenant).filter(assigned_agent=away).exists()


def test_assignment_respects_capacity_and_fills_when_an_agent_comes_online(tenant_a, clock):
    inbox = _auto_inbox(tenant_a, capacity=1)
    first, second = _agents(tenant_a, 2, inbox)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=first)
    one, two = _handed_off(tenant_a), _handed_off(tenant_a)
    assert one.assigned_agent == first and one.status == ConversationStatus.WITH_AGENT
    assert two.assigned_agent is None and two.status == ConversationStatus.WAITING_FOR_HUMAN
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=second)
    two.refresh_from_db()
    assert two.assigned_agent == second and two.status == ConversationStatus.WITH_AGENT


def test_least_busy_picks_the_agent_with_fewest_open_conversations(tenant_a, clock):
    inbox = _auto_inbox(tenant_a, mode=AssignmentMode.LEAST_BUSY)
    busy, free = _agents(tenant_a, 2, inbox)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=busy)
    _handed_off(tenant_a), _handed_off(tenant_a)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=free)
    clock.advance(1)
    assert _handed_off(tenant_a).assigned_agent == free
    clock.advance(1)
    assert _handed_off(tenant_a).assigned_agent == free


def test_online_members_without_a_grant_are_never_assigned(tenant_a, clock):
    _auto_inbox(tenant_a)
    for boss in (tenant_a.owner, tenant_a.admin, tenant_a.agent):
        assignment.agent_presence_seen(tenant=tenant_a.tenant, user=boss)
    conversation = _handed_off(tenant_a)
    assert conversation.assigned_agent is None
    assert conversation.status == ConversationStatus.WAITING_FOR_HUMAN


def test_manual_inbox_never_assigns(tenant_a, clock):
    inbox = selectors.inbox_default(tenant=tenant_a.tenant)
    (agent,) = _agents(tenant_a, 1, inbox)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=agent)
    assert _handed_off(tenant_a).assigned_agent is None


def test_agent_whose_console_goes_quiet_is_away_and_their_conversations_pass_on(tenant_a, clock):
    inbox = _auto_inbox(tenant_a)
    leaving, staying = _agents(tenant_a, 2, inbox)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=leaving)
    conversation = _handed_off(tenant_a)
    assert conversation.assigned_agent == leaving
    clock.advance(30)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=staying)
    # Within the grace period (a reload, a flaky network) nothing changes.
    clock.advance(20)
    assert assignment.presence_sweep() == 0
    clock.advance(15)
    assert assignment.presence_sweep() == 1
    conversation.refresh_from_db()
    assert conversation.assigned_agent == staying
    presence = AgentPresence.objects.for_tenant(tenant_a.tenant).get(user=leaving)
    assert presence.status == PresenceStatus.AWAY
    # The last agent leaves too: the conversation waits in the queue again.
    clock.advance(120)
    assert assignment.presence_sweep() == 1
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WAITING_FOR_HUMAN
    assert conversation.assigned_agent is None


def test_presence_of_one_tenant_never_assigns_in_another(tenant_a, tenant_b, clock):
    _auto_inbox(tenant_a)
    _auto_inbox(tenant_b)
    (theirs,) = _agents(tenant_b, 1, selectors.inbox_default(tenant=tenant_b.tenant))
    assignment.agent_presence_seen(tenant=tenant_b.tenant, user=theirs)
    # Not a member of tenant A: seeing them there records nothing.
    assert assignment.agent_presence_seen(tenant=tenant_a.tenant, user=theirs) is False
    assert _handed_off(tenant_a).assigned_agent is None
    assert _handed_off(tenant_b).assigned_agent == theirs


# --- Service levels ------------------------------------------------------------------------------


def _sla_inbox(world, *, first_response=0, resolution=0):
    inbox = selectors.inbox_default(tenant=world.tenant)
    return inbox_settings.inbox_update(
        inbox=inbox, first_response_minutes=first_response, resolution_minutes=resolution
    )


def _breaches(world):
    return Event.objects.for_tenant(world.tenant).filter(type=EventType.SLA_BREACHED)


def test_missed_first_response_is_recorded_once_and_flagged_in_the_console(tenant_a, clock):
    _sla_inbox(tenant_a, first_response=5)
    conversation = _handed_off(tenant_a)
    clock.advance(4 * 60)
    assert sla.sla_check() == 0
    clock.advance(2 * 60)
    assert sla.sla_check() == 1
    clock.advance(60)
    assert sla.sla_check() == 0
    (event,) = _breaches(tenant_a)
    assert event.payload["conversation_id"] == str(conversation.public_id)
    assert event.payload["target"] == "first_response"
    assert selectors.conversation_card(conversation)["sla_breached"] is True


def test_first_reply_in_time_meets_the_target(tenant_a, clock):
    _sla_inbox(tenant_a, first_response=5)
    conversation = _handed_off(tenant_a)
    clock.advance(3 * 60)
    chat.message_post_agent(conversation=conversation, agent=tenant_a.admin, content="Hi!")
    clock.advance(10 * 60)
    assert sla.sla_check() == 0
    assert not _breaches(tenant_a).exists()
    route = ConversationInbox.objects.for_tenant(tenant_a.tenant).get(conversation=conversation)
    assert route.first_response_due_at is None  # met: no longer watched


def test_unresolved_conversation_breaches_the_resolution_target(tenant_a, tenant_b, clock):
    _sla_inbox(tenant_a, resolution=60)
    _sla_inbox(tenant_b, resolution=60)
    late = _handed_off(tenant_a)
    on_time = _handed_off(tenant_b)
    clock.advance(30 * 60)
    chat.conversation_resolve(conversation=on_time)
    clock.advance(31 * 60)
    assert sla.sla_check() == 1
    (event,) = _breaches(tenant_a)
    assert event.payload == {
        **event.payload,
        "conversation_id": str(late.public_id),
        "target": "resolution",
    }
    assert not _breaches(tenant_b).exists()


def test_dashboard_counts_sla_breaches_of_its_tenant_only(tenant_a, tenant_b, clock, client):
    for world in (tenant_a, tenant_b):
        _sla_inbox(world, first_response=1)
    _handed_off(tenant_a)
    _handed_off(tenant_b)
    _handed_off(tenant_b)
    clock.advance(120)
    assert sla.sla_check() == 3
    client.force_login(tenant_a.owner)
    page = client.get("/dashboard/?tenant=acme").content.decode()
    assert 'data-metric="sla_breaches">1<' in page


def test_agent_who_switches_to_away_gets_nothing_until_back(tenant_a, clock):
    inbox = _auto_inbox(tenant_a)
    (agent,) = _agents(tenant_a, 1, inbox)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=agent)
    conversation = _handed_off(tenant_a)
    assert conversation.assigned_agent == agent
    assert assignment.agent_presence_choose(tenant=tenant_a.tenant, user=agent, away=True) == "away"
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WAITING_FOR_HUMAN
    # The open console keeps being seen, but the agent stays away by their own choice.
    clock.advance(10)
    assignment.agent_presence_seen(tenant=tenant_a.tenant, user=agent)
    assert _handed_off(tenant_a).assigned_agent is None
    assert (
        assignment.agent_presence_choose(tenant=tenant_a.tenant, user=agent, away=False) == "online"
    )
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent


def test_rules_on_the_handoff_reason_and_answerability_wait_for_the_handoff(tenant_a):
    unsure = services.inbox_create(tenant=tenant_a.tenant, name="Unsure answers")
    asked = services.inbox_create(tenant=tenant_a.tenant, name="Asked for a person")
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant, name="Weak answer", answerability_below=0.4, inbox=unsure
    )
    inbox_settings.routing_rule_create(
        tenant=tenant_a.tenant,
        name="Wants a person",
        handoff_reasons=[HandoffReason.CUSTOMER_REQUEST],
        inbox=asked,
    )
    weak = _start(tenant_a)
    chat.message_post_customer(conversation=weak, text="Can I pay in instalments?")
    answer = chat.assistant_message_start(conversation=weak)
    chat.assistant_message_finish(message=answer, content="Maybe.", answerability=0.2)
    assert _inbox_of(weak).is_default  # before the handoff, such rules do not apply
    chat.handoff_request(conversation=weak, reason=HandoffReason.LOW_CONFIDENCE)
    assert _inbox_of(weak) == unsure
    assert _inbox_of(_handed_off(tenant_a)) == asked
    with pytest.raises(ApplicationError):
        inbox_settings.routing_rule_create(
            tenant=tenant_a.tenant, name="x", handoff_reasons=["bored"], inbox=asked
        )
    with pytest.raises(ApplicationError):
        inbox_settings.routing_rule_create(
            tenant=tenant_a.tenant, name="x", answerability_below=1.5, inbox=asked
        )
