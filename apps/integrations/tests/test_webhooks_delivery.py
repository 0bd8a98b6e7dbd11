"""Webhooks delivered to a real HTTP receiver on 127.0.0.1.

The first group calls the delivery service directly; the second runs everything through a real
Celery worker process against the test database, from `event_record` to the receiver.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps.events.models import Event, EventType
from apps.events.services import event_record
from apps.integrations import services
from apps.integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from apps.integrations.signing import verify_signature
from apps.integrations.tests.factories import (
    ApiKeyFactory,
    EventFactory,
    WebhookDeliveryFactory,
    WebhookSubscriptionFactory,
)
from tests.support.fixtures import SUBPROCESS_RETRY_DELAYS, wait_until

pytestmark = pytest.mark.usefixtures("webhooks_to_loopback")


def assert_signed(request, secret: str) -> None:
    headers = request.headers
    assert verify_signature(
        secret,
        headers["X-SupportAI-Timestamp"],
        request.body,
        headers["X-SupportAI-Signature"],
    ), headers


# --- Service level (no worker) --------------------------------------------------------------


def test_a_delivery_is_signed_and_recorded(tenant_a, http_receiver):
    subscription = WebhookSubscriptionFactory(tenant=tenant_a.tenant, url=http_receiver.url)
    event = EventFactory(tenant=tenant_a.tenant, payload={"conversation_id": "c-9"})
    delivery = WebhookDeliveryFactory(subscription=subscription, event=event)

    services.webhook_delivery_attempt(delivery_id=delivery.pk)

    (request,) = http_receiver.wait_for(1)
    assert_signed(request, subscription.secret)
    assert request.headers["X-SupportAI-Event"] == "conversation.created"
    assert request.headers["X-SupportAI-Delivery"] == str(delivery.public_id)
    body = request.json()
    assert body["id"] == str(event.public_id) and body["data"] == {"conversation_id": "c-9"}
    assert body["tenant"] == "acme"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    assert delivery.last_status_code == 200 and delivery.delivered_at


def test_a_failed_attempt_schedules_a_retry(
    tenant_a, http_receiver, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.WEBHOOK_RETRY_DELAYS = [30.0]
    scheduled: list[tuple[int, float]] = []
    monkeypatch.setattr(
        services, "_enqueue_delivery", lambda pk, countdown=0: scheduled.append((pk, countdown))
    )
    http_receiver.respond_with(503)
    delivery = WebhookDeliveryFactory(
        subscription=WebhookSubscriptionFactory(tenant=tenant_a.tenant, url=http_receiver.url)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_status_code == 503
    assert delivery.last_error == "HTTP 503"
    # The receiver is on loopback: what a private address answers is never kept (issue #11).
    assert delivery.response_body_excerpt == ""
    assert delivery.next_attempt_at > timezone.now()
    assert len(scheduled) == 1 and 30.0 <= scheduled[0][1] <= 37.5

    # A duplicate task arriving before the retry is due does nothing.
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None
    assert len(http_receiver.requests) == 1


def test_an_unreachable_receiver_counts_as_a_failure(tenant_a, settings):
    settings.WEBHOOK_RETRY_DELAYS = []
    delivery = WebhookDeliveryFactory(
        subscription=WebhookSubscriptionFactory(tenant=tenant_a.tenant, url="http://127.0.0.1:9/")
    )
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.last_status_code is None and "ConnectError" in delivery.last_error
    dead = Event.objects.for_tenant(tenant_a.tenant).get(type=EventType.WEBHOOK_DELIVERY_DEAD)
    assert dead.payload["delivery_id"] == str(delivery.public_id)


def test_a_private_target_is_refused_at_send_time_in_production(tenant_a, settings):
    delivery = WebhookDeliveryFactory(
        subscription=WebhookSubscriptionFactory(tenant=tenant_a.tenant, url="http://127.0.0.1:9/")
    )
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    settings.WEBHOOK_RETRY_DELAYS = []
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and "private" in delivery.last_error


# --- Through a real Celery worker -----------------------------------------------------------------

RETRIES = len(SUBPROCESS_RETRY_DELAYS.split(","))


@pytest.fixture
def worker(transactional_db, celery_worker_process):
    return celery_worker_process


def _world():
    from apps.tenants.services import tenant_create

    return tenant_create(name="Webhook Co", slug="webhook-co")


def _delivery_state(tenant, status):
    return WebhookDelivery.objects.for_tenant(tenant).filter(status=status).first()


def test_worker_delivers_a_committed_event_with_a_valid_signature(worker, http_receiver):
    tenant = _world()
    subscription = services.webhook_subscription_create(
        tenant=tenant, url=http_receiver.url, event_types=["handoff.requested"]
    )
    with transaction.atomic():
        event = event_record(
            tenant=tenant, type=EventType.HANDOFF_REQUESTED, payload={"conversation_id": "c-1"}
        )
    (request,) = http_receiver.wait_for(1)
    assert_signed(request, subscription.secret)
    assert json.loads(request.body)["id"] == str(event.public_id)
    delivery = wait_until(
        lambda: _delivery_state(tenant, DeliveryStatus.SUCCEEDED),
        message=f"delivery not marked succeeded; worker log:\n{worker.log()[-3000:]}",
    )
    assert delivery.attempts == 1
    event.refresh_from_db()
    assert event.dispatched_at is not None


def test_worker_retries_after_500s_until_it_succeeds(worker, http_receiver):
    tenant = _world()
    services.webhook_subscription_create(tenant=tenant, url=http_receiver.url, event_types=["*"])
    http_receiver.respond_with(500, 500, then=200)
    with transaction.atomic():
        event_record(tenant=tenant, type=EventType.MESSAGE_CREATED, payload={})
    requests = http_receiver.wait_for(3)
    # Each retry is a new attempt of the same delivery, signed afresh.
    assert len({r.headers["X-SupportAI-Delivery"] for r in requests}) == 1
    delivery = wait_until(
        lambda: _delivery_state(tenant, DeliveryStatus.SUCCEEDED),
        message=f"delivery not marked succeeded; worker log:\n{worker.log()[-3000:]}",
    )
    assert delivery.attempts == 3
    log = list(WebhookAttempt.objects.for_tenant(tenant).filter(delivery=delivery))
    assert [(a.number, a.status_code, a.succeeded) for a in log] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]


def test_worker_dead_letters_after_the_last_retry_and_redelivery_revives(worker, http_receiver):
    tenant = _world()
    subscription = services.webhook_subscription_create(
        tenant=tenant, url=http_receiver.url, event_types=["*"]
    )
    http_receiver.respond_with(then=500)
    with transaction.atomic():
        event_record(tenant=tenant, type=EventType.CONVERSATION_RESOLVED, payload={})
    http_receiver.wait_for(RETRIES + 1)
    delivery = wait_until(
        lambda: _delivery_state(tenant, DeliveryStatus.DEAD),
        message=f"delivery not dead-lettered; worker log:\n{worker.log()[-3000:]}",
    )
    assert delivery.attempts == RETRIES + 1
    dead_event = wait_until(
        lambda: (
            Event.objects.for_tenant(tenant)
            .filter(type=EventType.WEBHOOK_DELIVERY_DEAD, dispatched_at__isnull=False)
            .first()
        ),
        message="no dispatched webhook.delivery_dead event",
    )
    assert dead_event.payload["subscription_id"] == str(subscription.public_id)
    # The dead-letter event went to the admin, never to the failing endpoint.
    assert len(http_receiver.requests) == RETRIES + 1

    http_receiver.respond_with(then=200)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory(tenant=tenant).plaintext}")
    response = client.post(f"/api/v1/webhooks/deliveries/{delivery.public_id}/redeliver/")
    assert response.status_code == 202, response.content
    http_receiver.wait_for(RETRIES + 2)
    revived = wait_until(
        lambda: _delivery_state(tenant, DeliveryStatus.SUCCEEDED),
        message=f"redelivery did not succeed; worker log:\n{worker.log()[-3000:]}",
    )
    assert revived.pk == delivery.pk


def test_worker_never_delivers_an_event_from_a_rolled_back_transaction(worker, http_receiver):
    tenant = _world()
    services.webhook_subscription_create(tenant=tenant, url=http_receiver.url, event_types=["*"])

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        event_record(tenant=tenant, type=EventType.FEEDBACK_RECEIVED, payload={"n": "rolled back"})
        raise Boom
    with transaction.atomic():
        kept = event_record(tenant=tenant, type=EventType.FEEDBACK_RECEIVED, payload={"n": "kept"})
    # The committed event, recorded after the rolled-back one, arrives; the other never does.
    wait_until(
        lambda: _delivery_state(tenant, DeliveryStatus.SUCCEEDED),
        message=f"committed event not delivered; worker log:\n{worker.log()[-3000:]}",
    )
    assert [r.json()["data"] for r in http_receiver.requests] == [{"n": "kept"}]
    assert list(Event.objects.for_tenant(tenant).values_list("pk", flat=True)) == [kept.pk]


def test_worker_sweep_dispatches_events_whose_task_was_lost(worker, http_receiver):
    from apps.events.tasks import dispatch_pending_events

    tenant = _world()
    services.webhook_subscription_create(tenant=tenant, url=http_receiver.url, event_types=["*"])
    # Committed, but its dispatch task never ran (written directly, as if the worker died).
    lost = Event.objects.create(tenant=tenant, type=EventType.SOURCE_SYNCED, payload={})
    Event.objects.for_tenant(tenant).filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    dispatch_pending_events.delay()
    (request,) = http_receiver.wait_for(1)
    assert request.json()["id"] == str(lost.public_id)
    lost.refresh_from_db()
    assert lost.dispatched_at is not None
