"""What the REST API shows of actions and their calls (header values never leave the server)."""

from __future__ import annotations

from rest_framework import serializers

from apps.actions.models import Action, ActionCall, CallStatus, HttpMethod
from apps.actions.services import EDITABLE_FIELDS


class ActionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    method = serializers.ChoiceField(choices=HttpMethod.choices, default=HttpMethod.GET)
    parameters = serializers.JSONField(
        required=False, help_text="A JSON Schema of type object: the action's parameters."
    )
    result_fields = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="Dotted paths into the JSON response that the customer may see.",
    )
    identity_bindings = serializers.DictField(
        child=serializers.CharField(max_length=80),
        required=False,
        help_text="parameter → claim of the signed end-user token (sub, email, name or "
        "claims.<name>).",
    )
    headers = serializers.DictField(
        child=serializers.CharField(max_length=4000, allow_blank=True),
        required=False,
        write_only=True,
        help_text="Header values (API tokens) are stored encrypted and never shown again; "
        "sending headers replaces all stored ones.",
    )
    header_names = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Action
        fields = ["id", *EDITABLE_FIELDS, "headers", "header_names", "created_at", "updated_at"]
        read_only_fields = ["id", "header_names", "created_at", "updated_at"]
        # Uniqueness per tenant is the service's check (the serializer does not know the tenant).
        validators: list = []


class ActionCallSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    action = serializers.CharField(source="action_name", read_only=True)
    action_id = serializers.SerializerMethodField()
    conversation_id = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=CallStatus.choices, read_only=True)

    class Meta:
        model = ActionCall
        fields = [
            "id",
            "action",
            "action_id",
            "conversation_id",
            "status",
            "params",
            "http_status",
            "latency_ms",
            "result",
            "error",
            "confirmed_by",
            "confirmed_at",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_action_id(self, obj: ActionCall) -> str | None:
        return str(obj.action.public_id) if obj.action_id else None

    def get_conversation_id(self, obj: ActionCall) -> str | None:
        return str(obj.conversation.public_id) if obj.conversation_id else None
