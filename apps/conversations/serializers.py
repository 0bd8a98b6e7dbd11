"""Shapes and validation for the conversations API. Objects are named by `id` = public UUID;
messages, which have no public id, by their number within the tenant (`id`, an integer)."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.conversations.api_services import MAX_DB_INTEGER, SETTABLE_STATUSES
from apps.conversations.models import (
    AnswerStrategy,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Feedback,
    FeedbackKind,
    HandoffReason,
    Message,
    MessageRole,
    MessageStatus,
)
from apps.conversations.selectors import (
    GROUNDING_OUTCOMES,
    answer_engine_wire,
    citation_wire,
    grounding_wire,
)

ATTRIBUTES_MAX_BYTES = 16 * 1024
ATTRIBUTES_MAX_DEPTH = 5
ATTRIBUTES_MAX_KEYS = 100
MAX_ACCESS_GROUPS = 50
RATINGS = ["up", "down", "1", "2", "3", "4", "5"]


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": (
            f"Free-form JSON object: at most {ATTRIBUTES_MAX_KEYS} keys, "
            f"{ATTRIBUTES_MAX_DEPTH} levels deep and {ATTRIBUTES_MAX_BYTES} bytes as JSON."
        ),
    }
)
class AttributesField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        if len(data) > ATTRIBUTES_MAX_KEYS:
            raise serializers.ValidationError(f"At most {ATTRIBUTES_MAX_KEYS} keys.")
        if _depth(data) > ATTRIBUTES_MAX_DEPTH:
            raise serializers.ValidationError(f"At most {ATTRIBUTES_MAX_DEPTH} levels deep.")
        # PostgreSQL's jsonb cannot hold NUL characters.
        if _has_nul(data):
            raise serializers.ValidationError("Null characters are not allowed.")
        try:
            size = len(json.dumps(data, allow_nan=False).encode())
        except ValueError as exc:
            raise serializers.ValidationError("NaN and Infinity are not JSON.") from exc
        if size > ATTRIBUTES_MAX_BYTES:
            raise serializers.ValidationError(f"At most {ATTRIBUTES_MAX_BYTES} bytes as JSON.")
        return data


def access_groups_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=MAX_ACCESS_GROUPS,
        **kwargs,
    )


# --- Contacts -------------------------------------------------------------------------------------


class ContactSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    external_id = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="Your id for the contact (the `sub` of end-user tokens); unique per tenant.",
    )
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    attributes = AttributesField(required=False)

    class Meta:
        model = Contact
        fields = ["id", "external_id", "email", "name", "attributes", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class ContactUpsertSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    attributes = AttributesField(required=False)


class ContactSummarySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Contact
        fields = ["id", "external_id", "email", "name"]
        read_only_fields = fields


# --- Conversations --------------------------------------------------------------------------------


class AgentSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)


class ConversationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    contact = ContactSummarySerializer(read_only=True, allow_null=True)
    assigned_agent = AgentSerializer(read_only=True, allow_null=True)
    status = serializers.ChoiceField(choices=ConversationStatus.choices, read_only=True)
    channel = serializers.ChoiceField(choices=Channel.choices, read_only=True)
    handoff_reason = serializers.ChoiceField(
        choices=[("", "None"), *HandoffReason.choices], read_only=True
    )
    topics = serializers.ListField(child=serializers.CharField(), read_only=True)
    access_groups = serializers.ListField(child=serializers.CharField(), read_only=True)
    # A plain string: "" until the customer leaves an address (asked for out of office hours).
    reply_email = serializers.CharField(
        read_only=True,
        help_text="The email address the customer left for the reply (out of office hours), "
        "or an empty string.",
    )

    class Meta:
        model = Conversation
        fields = [
            "id",
            "status",
            "channel",
            "language",
            "contact",
            "assigned_agent",
            "handoff_reason",
            "reply_email",
            "access_groups",
            "summary",
            "topics",
            "last_message_at",
            "resolved_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ConversationStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[s.value for s in SETTABLE_STATUSES],
        help_text=(
            "`open` gives the conversation back to the assistant, `with_agent` to its assigned "
            "agent, `resolved` closes it (and asks the customer for a rating)."
        ),
    )


class AssignSerializer(serializers.Serializer):
    agent = serializers.CharField(
        max_length=254, help_text="The user id or email of a member of this tenant."
    )


# --- Messages -------------------------------------------------------------------------------------


class CitationSerializer(serializers.Serializer):
    n = serializers.IntegerField(allow_null=True)
    title = serializers.CharField(allow_blank=True)
    url = serializers.CharField(allow_null=True)
    snippet = serializers.CharField(allow_blank=True)


class DroppedSentenceSerializer(serializers.Serializer):
    sentence = serializers.CharField(help_text="What the model wrote; the customer never saw it.")
    reason = serializers.CharField(help_text="Why the guard dropped it.")


class GroundingSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=[*GROUNDING_OUTCOMES, "other"],
        help_text=(
            "`grounded`: the model's answer passed the groundedness guard; `fell_back`: it "
            "failed and the customer got the extractive answer; `extractive` / `generative`: "
            "made by that strategy alone; `declined`: the knowledge does not answer the "
            "question; `chitchat`: an off-topic request, declined politely; `handoff`: "
            "passed to a person."
        ),
    )
    reason = serializers.CharField(allow_blank=True)
    dropped = DroppedSentenceSerializer(
        many=True, help_text="Sentences the guard kept from the customer, and why."
    )


class MessageSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=MessageRole.choices, read_only=True)
    status = serializers.ChoiceField(choices=MessageStatus.choices, read_only=True)
    citations = serializers.SerializerMethodField()
    author = AgentSerializer(read_only=True, allow_null=True)
    strategy = serializers.ChoiceField(
        choices=[("", "None"), *AnswerStrategy.choices],
        read_only=True,
        help_text="How the assistant made the answer; empty for other messages.",
    )
    answerability = serializers.SerializerMethodField(
        help_text="How sure the assistant was (0-1) that the knowledge answers the question; "
        "null for other messages."
    )
    grounding = serializers.SerializerMethodField(
        help_text="What the groundedness guard did; null for other messages."
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "content",
            "status",
            "citations",
            "author",
            "strategy",
            "answerability",
            "grounding",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CitationSerializer(many=True))
    def get_citations(self, obj: Message) -> list[dict[str, Any]]:
        return [citation_wire(c) for c in obj.citations or []]

    @extend_schema_field(serializers.FloatField(allow_null=True, min_value=0, max_value=1))
    def get_answerability(self, obj: Message) -> float | None:
        return answer_engine_wire(obj)["answerability"]

    @extend_schema_field(GroundingSerializer(allow_null=True))
    def get_grounding(self, obj: Message) -> dict[str, Any] | None:
        return grounding_wire(obj)


class AgentMessageCreateSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=10_000, help_text="The reply, in plain text.")
    agent = serializers.CharField(
        max_length=254,
        required=False,
        help_text=(
            "Who replies: a member's user id or email. API keys must name one unless the "
            "conversation is assigned; people signed in reply as themselves."
        ),
    )


# --- Feedback -------------------------------------------------------------------------------------


class FeedbackSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(read_only=True)
    conversation_id = serializers.UUIDField(source="conversation.public_id", read_only=True)
    message_id = serializers.IntegerField(read_only=True, allow_null=True)
    kind = serializers.ChoiceField(choices=FeedbackKind.choices, read_only=True)
    rating = serializers.ChoiceField(choices=RATINGS, read_only=True)

    class Meta:
        model = Feedback
        fields = ["id", "conversation_id", "message_id", "kind", "rating", "comment", "created_at"]
        read_only_fields = fields


class FeedbackCreateSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    message_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_DB_INTEGER,
        help_text="An assistant answer of the conversation: thumbs (`up`/`down`) on it. "
        "Without it the rating is the conversation's CSAT (1 to 5).",
    )
    rating = serializers.ChoiceField(choices=RATINGS)
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True)


# --- Ask ------------------------------------------------------------------------------------------


class AskSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=4000)
    conversation_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="Ask in this conversation (it keeps its history); a new one if absent.",
    )
    access_groups = access_groups_field(
        required=False,
        help_text="Groups whose private knowledge may be used (a new conversation keeps them).",
    )


class AskAnswerSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    conversation_status = serializers.ChoiceField(choices=ConversationStatus.choices)
    question = MessageSerializer()
    answer = MessageSerializer(allow_null=True)
    decision = serializers.CharField(
        allow_blank=True,
        help_text="`answer`, `clarify`, `extractive` (excerpts, no language model), `decline` "
        "(the knowledge does not answer the question) or `handoff`.",
    )
    handed_off = serializers.BooleanField()
