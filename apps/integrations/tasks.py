"""Celery tasks for webhook deliveries and idempotency housekeeping."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.integrations import services
from apps.integrations.models import IdempotencyRecord


@shared_task(ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt; the service schedules the retry (with `countdown`) or gives up."""
    services.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def deliver_lost_webhooks() -> int:
    """Beat: re-enqueue deliveries whose retry task was lost."""
    return services.webhook_deliveries_enqueue_due()


@shared_task(ignore_result=True)
def purge_idempotency_records() -> int:
    """Beat: drop stored responses older than their 24 hours."""
    deleted, _ = IdempotencyRecord.objects.unscoped().filter(expires_at__lt=timezone.now()).delete()
    return deleted
