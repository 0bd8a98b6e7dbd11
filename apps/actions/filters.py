"""Query filters for the actions API (django-filter)."""

from __future__ import annotations

import django_filters

from apps.actions.models import Action, ActionCall, CallStatus


class ActionFilter(django_filters.FilterSet):
    class Meta:
        model = Action
        fields = ["is_active", "changes_data"]


class ActionCallFilter(django_filters.FilterSet):
    conversation = django_filters.UUIDFilter(field_name="conversation__public_id")
    action = django_filters.CharFilter(field_name="action_name")
    status = django_filters.ChoiceFilter(choices=CallStatus.choices)

    class Meta:
        model = ActionCall
        fields = ["conversation", "action", "status"]
