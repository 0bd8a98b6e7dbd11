"""Recording domain events. Call inside the transaction that makes the change."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.events.models import Event, EventType
from apps.events.tasks import dispatch_event


def event_record(*, tenant: Any, type: EventType | str, payload: dict[str, Any]) -> Event:
    """Write the event to the outbox; it is dispatched only if the transaction commits."""
    event = Event.objects.create(tenant=tenant, type=EventType(type), payload=payload)
    transaction.on_commit(lambda: _enqueue_dispatch(event.pk))
    return event


def _enqueue_dispatch(event_id: int) -> None:
    dispatch_event.delay(event_id)
