"""Reads for tenants and widget keys."""

from __future__ import annotations

from apps.tenants.models import Tenant, WidgetKey


def widget_key_resolve(*, key: str) -> WidgetKey | None:
    """The active widget key with its active tenant, or None. Keys are globally unique."""
    if not key or len(key) > 64:
        return None
    return (
        WidgetKey.objects.unscoped()
        .select_related("tenant")
        .filter(key=key, is_active=True, tenant__is_active=True)
        .first()
    )


def tenant_get_by_slug(*, slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug, is_active=True).first()
