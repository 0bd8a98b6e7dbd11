"""Reads for the dashboard and the exports, always for one tenant."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.analytics.models import ConversationInsight, DailyTenantStats, DriftAlert, DriftReport
from apps.core import permissions
from apps.events.models import Event, EventType
from apps.tenants.models import Role, Tenant

# Who sees analytics: a tenant's owners and admins (agents do not).
DASHBOARD_ROLE = Role.ADMIN


def dashboard_tenants(*, user: Any) -> QuerySet[Tenant]:
    return permissions.staff_tenants(user=user, min_role=DASHBOARD_ROLE).order_by("name")


def daily_stats(*, tenant: Any, days: int, today: dt.date | None = None) -> list[DailyTenantStats]:
    """The tenant's roll-ups of the last `days` days, oldest first (missing days are absent)."""
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=days)
    return list(DailyTenantStats.objects.for_tenant(tenant).filter(day__gte=since).order_by("day"))


def sla_breaches(*, tenant: Any, since: dt.date) -> int:
    """`sla.breached` events of the tenant since the start of `since` (local time)."""
    start = timezone.make_aware(dt.datetime.combine(since, dt.time.min))
    return (
        Event.objects.for_tenant(tenant)
        .filter(type=EventType.SLA_BREACHED, created_at__gte=start)
        .count()
    )


def latest_drift_report(*, tenant: Any) -> DriftReport | None:
    return (
        DriftReport.objects.for_tenant(tenant)
        .prefetch_related("clusters")
        .order_by("-window_end")
        .first()
    )


def drift_alerts(*, tenant: Any, limit: int = 20) -> list[DriftAlert]:
    return list(DriftAlert.objects.for_tenant(tenant).order_by("-window_end", "kind")[:limit])


def conversation_insights(*, tenant: Any) -> QuerySet[ConversationInsight]:
    return (
        ConversationInsight.objects.for_tenant(tenant)
        .select_related("conversation")
        .order_by("-summarized_at", "-id")
    )
