"""Conversation review in the admin: grants, tenants, filters, transcript, actions, export."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.conversations import feedback
from apps.conversations import services as chat
from apps.conversations.models import Conversation, ConversationStatus, Decision, MessageStatus
from apps.workspace import selectors, services

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:conversations_conversation_changelist"


def _conversation(world, text="Where is my parcel?", *, answer="It ships today [1]."):
    conversation = chat.conversation_start(tenant=world.tenant, widget_key=world.widget_key)
    chat.message_post_customer(conversation=conversation, text=text)
    reply = chat.assistant_message_start(conversation=conversation, model="smollm2-test")
    chat.assistant_message_finish(
        message=reply,
        content=answer,
        status=MessageStatus.COMPLETE,
        decision=Decision.ANSWER,
        prompt_version="2026-11-24.1",
        retrieval_ms=12,
        first_token_ms=340,
        total_ms=900,
        citations=[
            {
                "n": 1,
                "title": "Shipping guide",
                "url": "",
                "snippet": "ships",
                "chunk_id": "7",
                "document_id": "99",
                "score": 0.8123,
            }
        ],
        retrieval=[
            {"chunk_id": "7", "document_id": "99", "score": 0.8123, "found_by": ["both"], "rank": 1}
        ],
    )
    return conversation


def _ids(response) -> set[str]:
    return {str(c.public_id) for c in response.context["cl"].result_list}


def test_agent_without_grant_sees_no_conversation_in_the_admin(client, tenant_a):
    conversation = _conversation(tenant_a)
    client.force_login(tenant_a.agent)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200 and _ids(response) == set()
    change = reverse("admin:conversations_conversation_change", args=[conversation.pk])
    response = client.get(change)
    assert response.status_code == 302  # "does not exist", back to the index
    assert "Where is my parcel" not in client.get(change, follow=True).content.decode()


def test_granted_agent_sees_the_transcript_with_citations_and_metrics(client, tenant_a):
    conversation = _conversation(tenant_a)
    services.inbox_grant(
        inbox=selectors.inbox_default(tenant=tenant_a.tenant), agent=tenant_a.agent
    )
    client.force_login(tenant_a.agent)
    assert _ids(client.get(reverse(CHANGELIST))) == {str(conversation.public_id)}
    page = client.get(
        reverse("admin:conversations_conversation_change", args=[conversation.pk])
    ).content.decode()
    for expected in (
        "Where is my parcel?",
        "Shipping guide",
        "0.8123",
        "2026-11-24.1",
        "smollm2-test",
        "340 ms",
        "900 ms",
        "Mark wrong and correct",
    ):
        assert expected in page, expected


@pytest.mark.parametrize("who", ["owner", "agent", "outsider"])
def test_other_tenants_people_get_nothing_of_tenant_a(client, tenant_a, tenant_b, who):
    conversation = _conversation(tenant_a, text="Acme secret question")
    user = getattr(tenant_b, who)
    client.force_login(user)
    response = client.get(reverse(CHANGELIST))
    if response.status_code == 200:
        assert _ids(response) == set()
    else:
        assert response.status_code in (302, 403)
    change = reverse("admin:conversations_conversation_change", args=[conversation.pk])
    assert "Acme secret question" not in client.get(change, follow=True).content.decode()
    correct = reverse(
        "admin:workspace_conversation_correct",
        args=[conversation.pk, conversation.messages.last().pk],
    )
    assert "Acme secret question" not in client.get(correct, follow=True).content.decode()


def test_filters_search_and_csv_export(client, tenant_a):
    answered = _conversation(tenant_a, text="bike pedals")
    waiting = chat.conversation_start(tenant=tenant_a.tenant, widget_key=tenant_a.widget_key)
    chat.message_post_customer(conversation=waiting, text="I want a refund")
    chat.handoff_request(conversation=waiting, reason="customer_request")
    feedback.feedback_record(conversation=answered, kind="csat", rating=2)
    client.force_login(tenant_a.admin)
    url = reverse(CHANGELIST)
    a, w = str(answered.public_id), str(waiting.public_id)
    assert _ids(client.get(url, {"handed_off": "yes"})) == {w}
    assert _ids(client.get(url, {"unanswered": "yes"})) == {w}
    assert _ids(client.get(url, {"unanswered": "no"})) == {a}
    assert _ids(client.get(url, {"rating": "2"})) == {a}
    assert _ids(client.get(url, {"status": "waiting_for_human"})) == {w}
    assert _ids(client.get(url, {"q": "refund"})) == {w}
    response = client.post(
        url, {"action": "export_csv", "_selected_action": [answered.pk, waiting.pk]}
    )
    assert response["Content-Type"].startswith("text/csv")
    body = response.content.decode()
    assert a in body and w in body and "waiting_for_human" in body


def test_bulk_resolve_and_assign_within_the_tenant(client, tenant_a, tenant_b):
    one, two = _conversation(tenant_a), _conversation(tenant_a)
    client.force_login(tenant_a.admin)
    url = reverse(CHANGELIST)
    client.post(url, {"action": "resolve_selected", "_selected_action": [one.pk]})
    one.refresh_from_db()
    assert one.status == ConversationStatus.RESOLVED
    # The agent has no grant on the default inbox yet: assignment is refused.
    client.post(
        url,
        {
            "action": "assign_selected",
            "_selected_action": [two.pk],
            "apply": "1",
            "agent": tenant_a.agent.pk,
        },
    )
    two.refresh_from_db()
    assert two.assigned_agent_id is None
    # Tenant B's agent is not even offered.
    page = client.post(url, {"action": "assign_selected", "_selected_action": [two.pk]})
    assert tenant_b.agent.username not in page.content.decode()
    services.inbox_grant(
        inbox=selectors.inbox_default(tenant=tenant_a.tenant), agent=tenant_a.agent
    )
    client.post(
        url,
        {
            "action": "assign_selected",
            "_selected_action": [two.pk],
            "apply": "1",
            "agent": tenant_a.agent.pk,
        },
    )
    two.refresh_from_db()
    assert two.assigned_agent_id == tenant_a.agent.pk
    assert two.status == ConversationStatus.WITH_AGENT
    # A conversation of tenant B cannot be acted on from tenant A's admin.
    other = _conversation(tenant_b)
    client.post(url, {"action": "resolve_selected", "_selected_action": [other.pk]})
    assert Conversation.objects.for_tenant(tenant_b.tenant).get(pk=other.pk).status == "open"
