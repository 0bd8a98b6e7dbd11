"""Query filters for the conversations API (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.conversations.api_services import MAX_DB_INTEGER
from apps.conversations.models import (
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Feedback,
    FeedbackKind,
    Message,
    MessageRole,
)
from apps.conversations.serializers import RATINGS
from apps.core.api.filters import IsoDateTimeFilter


class ConversationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ConversationStatus.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    contact = django_filters.UUIDFilter(field_name="contact__public_id")
    contact_external_id = django_filters.CharFilter(
        field_name="contact__external_id", max_length=255
    )
    assigned_agent = django_filters.CharFilter(
        method="filter_assigned_agent",
        max_length=254,
        label="The assigned agent's user id or email.",
    )
    has_handoff = django_filters.BooleanFilter(
        field_name="handoff_reason", method="filter_has_handoff", label="Was handed off."
    )
    rating = django_filters.ChoiceFilter(
        choices=[(r, r) for r in RATINGS],
        method="filter_rating",
        label="Has feedback with this rating (up/down on an answer, 1-5 CSAT).",
    )
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = IsoDateTimeFilter(field_name="updated_at", lookup_expr="lt")

    class Meta:
        model = Conversation
        fields = ["status", "channel"]

    def filter_assigned_agent(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.isdigit():
            if int(value) > MAX_DB_INTEGER:
                return queryset.none()
            return queryset.filter(assigned_agent_id=int(value))
        return queryset.filter(assigned_agent__email__iexact=value)

    def filter_has_handoff(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        handed_off = ~Q(handoff_reason="")
        return queryset.filter(handed_off) if value else queryset.exclude(handed_off)

    def filter_rating(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        kind = FeedbackKind.THUMBS if value in {"up", "down"} else FeedbackKind.CSAT
        # The conversations are already scoped to the tenant; their feedback is too.
        feedback = Feedback.objects.unscoped().filter(
            conversation=OuterRef("pk"), kind=kind, rating=value
        )
        return queryset.filter(Exists(feedback))


class MessageFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=MessageRole.choices)
    after = django_filters.NumberFilter(
        field_name="id",
        lookup_expr="gt",
        min_value=0,
        max_value=MAX_DB_INTEGER,
        label="Only messages with an id above this one.",
    )

    class Meta:
        model = Message
        fields = ["role"]


class ContactFilter(django_filters.FilterSet):
    external_id = django_filters.CharFilter(max_length=255)
    email = django_filters.CharFilter(lookup_expr="iexact", max_length=254)
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = IsoDateTimeFilter(field_name="updated_at", lookup_expr="lt")

    class Meta:
        model = Contact
        fields = ["external_id", "email"]


class FeedbackFilter(django_filters.FilterSet):
    conversation = django_filters.UUIDFilter(field_name="conversation__public_id")
    kind = django_filters.ChoiceFilter(choices=FeedbackKind.choices)
    rating = django_filters.ChoiceFilter(choices=[(r, r) for r in RATINGS])
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Feedback
        fields = ["kind", "rating"]
