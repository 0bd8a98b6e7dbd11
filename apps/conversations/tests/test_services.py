"""Services and selectors of conversations: idempotency, events, feedback, tenant scoping."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from apps.conversations import feedback, selectors, services
from apps.conversations.models import Conversation, Feedback, Message
from apps.core.errors import ApplicationError, TenantScopeError
from apps.events.models import Event

pytestmark = pytest.mark.django_db


def events(tenant) -> list[str]:
    return list(Event.objects.for_tenant(tenant).values_list("type", flat=True))


def test_a_repeated_client_id_stores_the_message_once(tenant_a):
    conversation = services.conversation_start(tenant=tenant_a.tenant)
    first, created = services.message_post_customer(
        conversation=conversation, text="hi", client_id="c1"
    )
    again, created_again = services.message_post_customer(
        conversation=conversation, text="hi", client_id="c1"
    )
    assert created and not created_again and again.pk == first.pk
    assert conversation.messages.count() == 1
    assert events(tenant_a.tenant) == ["conversation.created", "message.created"]
    with pytest.raises(ApplicationError):
        services.message_post_customer(conversation=conversation, text="x", client_id="y" * 65)


def test_contacts_are_unique_per_tenant_and_external_id(tenant_a, tenant_b):
    a1 = services.contact_get_or_create(tenant=tenant_a.tenant, external_id="u1", name="Ann")
    a2 = services.contact_get_or_create(tenant=tenant_a.tenant, external_id="u1", email="a@x.io")
    b1 = services.contact_get_or_create(tenant=tenant_b.tenant, external_id="u1")
    assert a1.pk == a2.pk != b1.pk
    a2.refresh_from_db()
    assert (a2.name, a2.email) == ("Ann", "a@x.io")


def test_handoff_resolve_and_reopen(tenant_a):
    conversation = services.conversation_start(tenant=tenant_a.tenant)
    assert services.handoff_request(conversation=conversation, reason="low_confidence")
    assert not services.handoff_request(conversation=conversation, reason="customer_request")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.handoff_reason) == (
        "waiting_for_human",
        "low_confidence",
    )
    assert not conversation.assistant_active
    services.conversation_resolve(conversation=conversation, by=tenant_a.agent)
    conversation.refresh_from_db()
    assert conversation.status == "resolved" and conversation.resolved_at
    services.message_post_customer(conversation=conversation, text="one more thing")
    conversation.refresh_from_db()
    assert conversation.status == "open" and conversation.resolved_at is None
    assert events(tenant_a.tenant).count("handoff.requested") == 1
    assert "conversation.resolved" in events(tenant_a.tenant)


def test_feedback_replaces_earlier_votes_and_validates(tenant_a):
    conversation = services.conversation_start(tenant=tenant_a.tenant)
    answer = services.assistant_message_start(conversation=conversation)
    feedback.feedback_record(conversation=conversation, kind="thumbs", rating="up", message=answer)
    feedback.feedback_record(
        conversation=conversation, kind="thumbs", rating="down", message=answer
    )
    feedback.feedback_record(conversation=conversation, kind="csat", rating=5, comment="great")
    feedback.feedback_record(conversation=conversation, kind="csat", rating=3)
    assert sorted(Feedback.objects.for_tenant(tenant_a.tenant).values_list("kind", "rating")) == [
        ("csat", "3"),
        ("thumbs", "down"),
    ]
    for kwargs in (
        {"kind": "thumbs", "rating": "meh", "message": answer},
        {"kind": "thumbs", "rating": "up"},
        {"kind": "csat", "rating": 9},
    ):
        with pytest.raises(ApplicationError):
            feedback.feedback_record(conversation=conversation, **kwargs)


def test_reads_fail_closed_without_a_tenant_and_never_cross_tenants(tenant_a, tenant_b):
    conversation = services.conversation_start(tenant=tenant_a.tenant)
    with pytest.raises(TenantScopeError):
        list(Conversation.objects.all())
    with pytest.raises(TenantScopeError):
        Message.objects.count()
    assert (
        selectors.conversation_get(tenant=tenant_b.tenant, public_id=conversation.public_id) is None
    )
    assert selectors.conversation_get(tenant=tenant_a.tenant, public_id="junk") is None
    assert selectors.conversation_get(tenant=tenant_a.tenant, public_id=conversation.public_id)


def test_replay_after_a_cursor_and_the_wire_shape(tenant_a):
    conversation = services.conversation_start(tenant=tenant_a.tenant)
    messages = [
        services.message_post_customer(conversation=conversation, text=f"m{i}")[0] for i in range(4)
    ]
    assert [m.seq for m in messages] == [1, 2, 3, 4]
    ids = [m.pk for m in messages]
    after = selectors.messages_after(conversation=conversation, since=2)
    assert [m.pk for m in after] == ids[2:]
    assert [m.pk for m in selectors.messages_after(conversation=conversation, limit=2)] == ids[2:]
    wire = selectors.message_wire(Message.objects.for_tenant(tenant_a.tenant).get(pk=ids[0]))
    assert wire["id"] == 1  # the number within the conversation, not the primary key
    assert set(wire) == {"id", "role", "content", "created_at", "citations", "client_id", "status"}


@pytest.mark.django_db(transaction=True)
def test_messages_written_at_once_get_distinct_numbers_in_order(tenant_a):
    # Customer, assistant and agent rows of one conversation are written from different
    # processes at once; each must get its own number, and numbers must follow commit order so
    # that a replay cursor never skips a message.
    conversation = services.conversation_start(tenant=tenant_a.tenant)

    def post(i: int) -> int:
        try:
            message, _ = services.message_post_customer(
                conversation=conversation, text=f"m{i}", client_id=f"c{i}"
            )
            return message.seq
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(post, range(30)))
    assert sorted(numbers) == list(range(1, 31))
    stored = Message.objects.for_tenant(tenant_a.tenant).filter(conversation=conversation)
    assert list(stored.order_by("id").values_list("seq", flat=True)) == list(range(1, 31))


def test_an_anonymous_conversation_becomes_the_signed_in_visitors_once(tenant_a):
    conversation = services.conversation_start(tenant=tenant_a.tenant)
    alice = {"sub": "cust_alice", "email": "alice@example.com", "groups": ["vip"], "plan": "pro"}
    identified = services.conversation_identify(
        conversation=conversation, claims=alice, access_groups=alice["groups"]
    )
    assert identified is True
    stored = Conversation.objects.for_tenant(tenant_a.tenant).get(pk=conversation.pk)
    assert stored.contact.external_id == "cust_alice"
    assert stored.contact.email == "alice@example.com"
    assert stored.access_groups == ["vip"]
    assert stored.context["claims"]["plan"] == "pro"
    # Someone else's token later changes nothing: the conversation already has its customer.
    bob = {"sub": "cust_bob", "email": "bob@example.com", "groups": ["staff"]}
    again = services.conversation_identify(
        conversation=conversation, claims=bob, access_groups=bob["groups"]
    )
    assert again is False
    stored.refresh_from_db()
    assert stored.contact.external_id == "cust_alice" and stored.access_groups == ["vip"]
    assert conversation.contact.external_id == "cust_alice"  # the instance says so too
