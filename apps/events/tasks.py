"""The events dispatcher: fan each committed event out to the registered handlers (webhooks,
analytics; see `apps.events.fanout`)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from apps.events import fanout
from apps.events.models import Event

logger = logging.getLogger(__name__)

# Events younger than this are left to the task their own commit enqueued.
PENDING_GRACE = timedelta(seconds=30)
PENDING_BATCH = 500


@shared_task(ignore_result=True)
def dispatch_event(event_id: int) -> None:
    """Publish the event to the handlers (webhook deliveries first), mark it dispatched.

    Safe to run twice or concurrently for one event: the row is locked (others skip it) and an
    event already dispatched is left alone.
    """
    with transaction.atomic():
        # Unscoped by id (the task knows no tenant yet); everything after acts in its tenant.
        event = (
            Event.objects.unscoped()
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("tenant")
            .filter(pk=event_id, dispatched_at__isnull=True)
            .first()
        )
        if event is None:
            return
        fanout.publish(event)
        event.dispatched_at = timezone.now()
        event.save(update_fields=["dispatched_at", "updated_at"])
    logger.info("dispatched event %s (%s)", event.pk, event.type)


@shared_task(ignore_result=True)
def dispatch_pending_events() -> int:
    """Beat, every minute: enqueue committed events whose dispatch task never ran."""
    cutoff = timezone.now() - PENDING_GRACE
    ids = list(
        Event.objects.unscoped()
        .filter(dispatched_at__isnull=True, created_at__lt=cutoff)
        .order_by("id")
        .values_list("pk", flat=True)[:PENDING_BATCH]
    )
    for event_id in ids:
        dispatch_event.delay(event_id)
    if ids:
        logger.warning("re-enqueued %d undispatched event(s)", len(ids))
    return len(ids)
