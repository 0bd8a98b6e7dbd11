"""Webhook signing secrets are sealed at rest (apps/core/sealing.py): a database dump does not
let anyone forge deliveries, the product still signs with them, SECRET_KEY rotates through
SECRET_KEY_FALLBACKS, and the migration seals the secrets stored in clear before it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.integrations import services
from apps.integrations.models import DeliveryStatus, WebhookSubscription
from apps.integrations.tests.factories import (
    EventFactory,
    WebhookDeliveryFactory,
    WebhookSubscriptionFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhooks_to_loopback")]

OLD_KEY = "test-secret-key-not-for-production-0123456789abcdef-old"
NEW_KEY = "test-secret-key-not-for-production-0123456789abcdef-new"


def _stored(subscription: WebhookSubscription) -> tuple[str, str]:
    """The columns as the database holds them (what a dump or backup reveals)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, previous_secret FROM integrations_webhooksubscription WHERE id = %s",
            [subscription.pk],
        )
        return cursor.fetchone()


def _reloaded(subscription: WebhookSubscription) -> WebhookSubscription:
    return WebhookSubscription.objects.for_tenant(subscription.tenant_id).get(pk=subscription.pk)


def test_webhook_secrets_are_sealed_at_rest_and_still_sign(tenant_a, http_receiver):
    subscription = services.webhook_subscription_create(
        tenant=tenant_a.tenant, url=http_receiver.url, event_types=["*"]
    )
    first = subscription.secret
    assert first.startswith("whsec_")
    stored, _ = _stored(subscription)
    assert first not in stored and stored.startswith("gAAAAA")  # a Fernet token
    assert _reloaded(subscription).secret == first

    services.webhook_subscription_rotate_secret(subscription=subscription)
    stored, previous = _stored(subscription)
    assert subscription.secret not in stored and first not in previous
    assert previous.startswith("gAAAAA")
    assert _reloaded(subscription).signing_secrets() == [subscription.secret, first]

    delivery = WebhookDeliveryFactory(
        subscription=subscription, event=EventFactory(tenant=tenant_a.tenant)
    )
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    (request,) = http_receiver.wait_for(1)
    signatures = request.headers["X-SupportAI-Signature"].split(",")
    assert len(signatures) == 2  # signed with the new secret and, for a day, the old one
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_secret_key_rotation_opens_through_fallbacks_and_never_sends_unsigned(
    tenant_a, settings, http_receiver
):
    settings.SECRET_KEY = OLD_KEY
    subscription = WebhookSubscriptionFactory(tenant=tenant_a.tenant, url=http_receiver.url)
    secret = _reloaded(subscription).secret
    assert secret

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert _reloaded(subscription).secret == secret

    settings.SECRET_KEY_FALLBACKS = []
    lost = _reloaded(subscription)
    assert lost.secret == "" and lost.signing_secrets() == []
    settings.WEBHOOK_RETRY_DELAYS = []
    delivery = WebhookDeliveryFactory(subscription=lost, event=EventFactory(tenant=tenant_a.tenant))
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and "rotate it" in delivery.last_error
    assert http_receiver.requests == []  # nothing went out unsigned

    services.webhook_subscription_rotate_secret(subscription=lost)
    assert _reloaded(subscription).signing_secrets() == [lost.secret]


@pytest.mark.django_db(transaction=True)
def test_the_migration_seals_secrets_stored_in_clear(tenant_a):
    before = [("integrations", "0003_one_tenant_manager")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model(
            "integrations", "WebhookSubscription"
        )
        row = old._base_manager.create(
            tenant_id=tenant_a.tenant.pk,
            url="https://hooks.example.com/in",
            event_types=["*"],
            secret="whsec_clear",
            previous_secret="whsec_older",
        )
        assert _stored(row) == ("whsec_clear", "whsec_older")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    stored, previous = _stored(row)
    assert "whsec_" not in stored + previous
    reloaded = WebhookSubscription.objects.for_tenant(tenant_a.tenant).get(pk=row.pk)
    assert (reloaded.secret, reloaded.previous_secret) == ("whsec_clear", "whsec_older")
