"""Query filters for the integrations API (django-filter)."""

from __future__ import annotations

import django_filters

from apps.core.api.filters import IsoDateTimeFilter
from apps.events.models import Event, EventType
from apps.integrations.models import ApiKey, DeliveryStatus, WebhookDelivery, WebhookSubscription


class ApiKeyFilter(django_filters.FilterSet):
    revoked = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = ApiKey
        fields = ["revoked"]


class WebhookSubscriptionFilter(django_filters.FilterSet):
    class Meta:
        model = WebhookSubscription
        fields = ["is_active"]


class WebhookDeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    subscription = django_filters.UUIDFilter(field_name="subscription__public_id")
    event = django_filters.UUIDFilter(field_name="event__public_id")
    event_type = django_filters.ChoiceFilter(field_name="event__type", choices=EventType.choices)
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = WebhookDelivery
        fields = ["status", "subscription", "event", "event_type"]


class EventFilter(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(choices=EventType.choices)
    dispatched = django_filters.BooleanFilter(
        field_name="dispatched_at", lookup_expr="isnull", exclude=True
    )
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["type", "dispatched"]
