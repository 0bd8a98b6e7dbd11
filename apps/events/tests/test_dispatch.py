"""The dispatcher: deliveries per subscription, fan-out handlers, commit-only publishing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.events import fanout, tasks
from apps.events.models import Event, EventType
from apps.events.services import event_record
from apps.integrations import services
from apps.integrations.models import WebhookDelivery
from apps.integrations.tests.factories import EventFactory, WebhookSubscriptionFactory


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Event ids passed to `dispatch_event.delay` (the broker is not needed here)."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.dispatch_event, "delay", calls.append)
    return calls


@pytest.fixture
def handler_calls():
    calls: list[Event] = []
    handler = fanout.register(calls.append)
    yield calls
    fanout.unregister(handler)


def test_dispatch_creates_one_delivery_per_matching_active_subscription(
    tenant_a, tenant_b, django_capture_on_commit_callbacks
):
    every = WebhookSubscriptionFactory(tenant=tenant_a.tenant, event_types=["*"])
    exact = WebhookSubscriptionFactory(tenant=tenant_a.tenant, event_types=["message.created"])
    WebhookSubscriptionFactory(tenant=tenant_a.tenant, event_types=["handoff.requested"])
    WebhookSubscriptionFactory(tenant=tenant_a.tenant, event_types=["*"], is_active=False)
    WebhookSubscriptionFactory(tenant=tenant_b.tenant, event_types=["*"])
    event = EventFactory(tenant=tenant_a.tenant, type=EventType.MESSAGE_CREATED)

    with django_capture_on_commit_callbacks() as callbacks:
        tasks.dispatch_event(event.pk)
    deliveries = WebhookDelivery.objects.for_tenant(tenant_a.tenant).filter(event=event)
    assert {d.subscription_id for d in deliveries} == {every.pk, exact.pk}
    assert len(callbacks) == 2  # one deliver_webhook per delivery, sent after commit
    event.refresh_from_db()
    assert event.dispatched_at is not None

    # Dispatching again (a duplicate task, the beat sweeper) sends nothing new.
    with django_capture_on_commit_callbacks() as callbacks:
        tasks.dispatch_event(event.pk)
    assert callbacks == []
    assert WebhookDelivery.objects.for_tenant(tenant_a.tenant).count() == 2


def test_dispatch_hands_the_event_to_every_handler(tenant_a, handler_calls):
    def broken(event):
        raise RuntimeError("analytics is down")

    fanout.register(broken)
    try:
        event = EventFactory(tenant=tenant_a.tenant)
        tasks.dispatch_event(event.pk)
    finally:
        fanout.unregister(broken)
    assert [e.pk for e in handler_calls] == [event.pk]
    event.refresh_from_db()
    assert event.dispatched_at is not None


def test_a_failing_required_handler_leaves_the_event_to_be_dispatched_again(tenant_a):
    """Webhook deliveries are a required handler: if creating them fails, the event is not
    marked dispatched (the beat sweep dispatches it again), so no webhook is lost."""

    def broken(event):
        raise RuntimeError("the webhooks table is locked")

    fanout.register(broken, required=True)
    try:
        event = EventFactory(tenant=tenant_a.tenant)
        with pytest.raises(RuntimeError):
            tasks.dispatch_event(event.pk)
    finally:
        fanout.unregister(broken)
    event.refresh_from_db()
    assert event.dispatched_at is None


def test_webhook_deliveries_are_a_required_fanout_handler():
    """Integrations registers its webhook fan-out from its AppConfig, so events import no app
    above them; required, so that a failure is retried instead of skipped."""
    assert services.webhook_fanout in fanout.handlers()
    assert services.webhook_fanout in fanout._required


def test_dead_letter_events_are_never_sent_as_webhooks(tenant_a):
    WebhookSubscriptionFactory(tenant=tenant_a.tenant, event_types=["*"])
    event = EventFactory(tenant=tenant_a.tenant, type=EventType.WEBHOOK_DELIVERY_DEAD)
    tasks.dispatch_event(event.pk)
    assert not WebhookDelivery.objects.for_tenant(tenant_a.tenant).exists()


def test_dispatch_of_a_missing_event_does_nothing(db):
    tasks.dispatch_event(987654321)


def test_an_event_in_a_rolled_back_transaction_is_never_published(transactional_db, enqueued):
    from apps.tenants.services import tenant_create

    tenant = tenant_create(name="Rollback Co", slug="rollback")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        event_record(tenant=tenant, type=EventType.CONVERSATION_CREATED, payload={"n": 1})
        raise Boom
    assert enqueued == []
    assert not Event.objects.for_tenant(tenant).exists()

    with transaction.atomic():
        kept = event_record(tenant=tenant, type=EventType.CONVERSATION_CREATED, payload={"n": 2})
        assert enqueued == []  # not before the commit
    assert enqueued == [kept.pk]


def test_pending_sweep_picks_up_committed_but_undispatched_events(tenant_a, enqueued):
    stale = EventFactory(tenant=tenant_a.tenant)
    fresh = EventFactory(tenant=tenant_a.tenant)
    done = EventFactory(tenant=tenant_a.tenant, dispatched_at=timezone.now())
    long_ago = timezone.now() - timedelta(minutes=5)
    Event.objects.for_tenant(tenant_a.tenant).filter(pk__in=[stale.pk, done.pk]).update(
        created_at=long_ago
    )
    assert tasks.dispatch_pending_events() == 1
    assert enqueued == [stale.pk]
    assert fresh.pk not in enqueued
