"""Shapes of inboxes, grants, routing rules and agents' presence in the REST API."""

from __future__ import annotations

from rest_framework import serializers

from apps.conversations.models import HandoffReason
from apps.workspace.inbox_settings import RULE_FIELDS
from apps.workspace.models import AgentPresence, AssignmentMode, Inbox, Priority, RoutingRule


class InboxSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    assignment = serializers.ChoiceField(choices=AssignmentMode.choices, read_only=True)

    class Meta:
        model = Inbox
        fields = [
            "id",
            "name",
            "is_default",
            "assistant_enabled",
            "assignment",
            "agent_capacity",
            "first_response_minutes",
            "resolution_minutes",
            "time_zone",
            "office_hours",
            "holidays",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class InboxWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    assistant_enabled = serializers.BooleanField(
        required=False,
        help_text="false: conversations routed here go to a person at once, without the bot.",
    )
    assignment = serializers.ChoiceField(choices=AssignmentMode.choices, required=False)
    agent_capacity = serializers.IntegerField(
        min_value=0,
        max_value=1000,
        required=False,
        help_text="Most conversations an agent works at once before assignment skips them "
        "(0: no limit).",
    )
    first_response_minutes = serializers.IntegerField(
        min_value=0,
        max_value=525600,
        required=False,
        help_text="Target for an agent's first reply after the handoff, in minutes (0: none).",
    )
    resolution_minutes = serializers.IntegerField(
        min_value=0,
        max_value=525600,
        required=False,
        help_text="Target for resolving the conversation after the handoff, in minutes (0: none).",
    )

    time_zone = serializers.CharField(
        max_length=64, required=False, help_text="The office hours' time zone, e.g. Europe/Berlin."
    )
    office_hours = serializers.DictField(
        child=serializers.ListField(
            child=serializers.ListField(child=serializers.CharField(max_length=5), max_length=2),
            max_length=12,
        ),
        required=False,
        help_text='Weekly local hours, e.g. {"mon": [["09:00", "17:00"]]}; {} means always open.',
    )
    holidays = serializers.ListField(
        child=serializers.DateField(),
        required=False,
        max_length=400,
        help_text="Local dates the team is out all day.",
    )


class GrantSerializer(serializers.Serializer):
    agent = serializers.CharField(
        max_length=254, help_text="The user id or email of a member of this tenant."
    )


class GrantedAgentSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)


class RoutingRuleSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    inbox = serializers.UUIDField(
        source="inbox.public_id",
        allow_null=True,
        required=False,
        help_text="Route matching conversations into this inbox (its id).",
    )
    widget_key = serializers.CharField(
        source="widget_key.key",
        allow_null=True,
        required=False,
        max_length=64,
        help_text="Only conversations started through this widget key.",
    )
    languages = serializers.ListField(
        child=serializers.CharField(max_length=16), required=False, max_length=50
    )
    token_values = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=50
    )
    keywords = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=50
    )
    priority = serializers.ChoiceField(choices=Priority.choices, allow_null=True, required=False)
    handoff_reasons = serializers.ListField(
        child=serializers.ChoiceField(choices=HandoffReason.choices),
        required=False,
        max_length=10,
        help_text="Only when handing off, for one of these reasons.",
    )
    answerability_below = serializers.FloatField(
        min_value=0.01,
        max_value=1,
        allow_null=True,
        required=False,
        help_text="Only when handing off after an answer whose answerability was below this.",
    )

    class Meta:
        model = RoutingRule
        fields = ["id", *RULE_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class PresenceSerializer(serializers.ModelSerializer):
    agent = GrantedAgentSerializer(source="user", read_only=True)

    class Meta:
        model = AgentPresence
        fields = ["agent", "status", "last_seen_at", "last_assigned_at"]
        read_only_fields = fields
