"""Query filters for the integrations API (django-filter)."""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from apps.events.models import Event, EventType
from apps.integrations.models import ApiKey, DeliveryStatus, WebhookDelivery, WebhookSubscription


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC: PostgreSQL refuses offsets beyond ±15:59, and
    a date near year 1 or 9999 may not survive the conversion (400, not a 500)."""

    def to_python(self, value: object) -> dt.datetime | None:
        result = super().to_python(value)
        if result is None:
            return None
        try:
            return result.astimezone(dt.UTC)
        except (OverflowError, ValueError) as exc:
            raise forms.ValidationError("Enter a date-time in a representable range.") from exc


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


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
