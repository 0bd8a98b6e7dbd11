"""Celery entry points for analytics; all run on the `batch` queue (workers/config.py).

Tasks take ids and ISO dates as JSON, find the tenant, and call one service.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.utils import timezone

from apps.analytics.insights import insights_generate
from apps.analytics.services import rollup_compute
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)


def _active_tenant_ids() -> list[int]:
    return list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))


@shared_task(ignore_result=True)
def rollup_day(*, tenant_id: int, day: str) -> None:
    """Recompute one tenant's roll-up of one day (ISO date)."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return
    rollup_compute(tenant=tenant, day=dt.date.fromisoformat(day))


@shared_task(ignore_result=True)
def rollup_yesterday() -> int:
    """Beat, nightly: one `rollup_day` per active tenant for yesterday (and the day before,
    which late feedback may still have changed)."""
    today = timezone.localdate()
    days = [today - dt.timedelta(days=1), today - dt.timedelta(days=2)]
    count = 0
    for tenant_id in _active_tenant_ids():
        for day in days:
            rollup_day.delay(tenant_id=tenant_id, day=day.isoformat())
            count += 1
    return count


@shared_task(ignore_result=True)
def drift_check_tenant(*, tenant_id: int) -> None:
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return
    # Heavy optional library (SciPy): loaded only by the weekly drift check, not by every
    # process that queues a roll-up.
    from apps.analytics import drift

    drift.drift_check(tenant=tenant)


@shared_task(ignore_result=True)
def drift_check() -> int:
    """Beat, weekly: one drift check per active tenant."""
    ids = _active_tenant_ids()
    for tenant_id in ids:
        drift_check_tenant.delay(tenant_id=tenant_id)
    return len(ids)


@shared_task(ignore_result=True)
def summarize_resolved_conversations_tenant(*, tenant_id: int) -> int:
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return 0
    return insights_generate(tenant=tenant)


@shared_task(ignore_result=True)
def summarize_resolved_conversations() -> int:
    """Beat, nightly: summaries and topic tags for resolved conversations, per tenant."""
    ids = _active_tenant_ids()
    for tenant_id in ids:
        summarize_resolved_conversations_tenant.delay(tenant_id=tenant_id)
    return len(ids)
