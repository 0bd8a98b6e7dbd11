"""The analytics app's events fan-out handler, registered once from `AnalyticsConfig.ready()`.

Every dispatched event is counted in Prometheus, and days that received feedback or outcomes
are queued for a fresh roll-up (late feedback on yesterday's answers). Celery's task signals
are `apps.core.observability.hooks`.

No business flow runs here: the roll-ups read the database, which stays the record.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.utils import timezone

from apps.analytics.tasks import rollup_day
from apps.core.observability import metrics
from apps.events import fanout
from apps.events.models import EventType

# Events after which a tenant's roll-up of the day is worth refreshing.
_ROLLUP_EVENTS = frozenset({"conversation.resolved", "feedback.received", "handoff.requested"})
# At most one refresh per tenant and day in this many seconds.
ROLLUP_DEBOUNCE_SECONDS = 300


def event_ingest(event: Any) -> None:
    """Events fan-out handler: count the event; queue today's roll-up of its tenant (debounced)."""
    metrics.event_dispatched(str(event.type), known=EventType.values)
    if event.type not in _ROLLUP_EVENTS:
        return
    day = timezone.localdate(event.created_at)
    key = f"analytics:rollup-queued:{event.tenant_id}:{day.isoformat()}"
    if cache.add(key, 1, timeout=ROLLUP_DEBOUNCE_SECONDS):
        rollup_day.apply_async(
            kwargs={"tenant_id": event.tenant_id, "day": day.isoformat()},
            countdown=ROLLUP_DEBOUNCE_SECONDS,
        )


def connect() -> None:
    fanout.register(event_ingest)
