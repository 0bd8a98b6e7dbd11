"""Reads for API keys, webhook subscriptions and deliveries."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.integrations.models import ApiKey, WebhookDelivery, WebhookSubscription
from apps.tenants.models import Tenant


def api_key_get_by_prefix(*, prefix: str) -> ApiKey | None:
    """The key with this visible prefix and its tenant, across tenants (the key names it)."""
    return (
        ApiKey.objects.unscoped()
        .select_related("tenant")
        .filter(prefix=prefix, tenant__is_active=True)
        .first()
    )


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_tenant(tenant).select_related("created_by")


def webhook_subscriptions_for_event(
    *, tenant: Tenant, event_type: str
) -> list[WebhookSubscription]:
    """Active subscriptions of the tenant that want this event type."""
    candidates = WebhookSubscription.objects.for_tenant(tenant).filter(is_active=True)
    return [s for s in candidates if s.wants(event_type)]


def webhook_delivery_list(*, tenant: Tenant) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.for_tenant(tenant).select_related("subscription", "event")
