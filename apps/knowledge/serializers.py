"""Shapes and validation for the knowledge API. Sources and documents are named by public UUID."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from apps.knowledge.models import Document, Source
from apps.knowledge.vectorstore.base import SEARCH_MODES

MAX_ACCESS_GROUPS = 50


def _groups(**kwargs):
    return serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=MAX_ACCESS_GROUPS, **kwargs
    )


class SourceSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    kind = serializers.ChoiceField(choices=Source.Kind.choices, read_only=True)
    status = serializers.ChoiceField(choices=Source.Status.choices, read_only=True)
    access_groups = serializers.ListField(child=serializers.CharField(), read_only=True)
    url = serializers.CharField(read_only=True, help_text="The page, site or link; may be empty.")
    filename = serializers.SerializerMethodField()

    class Meta:
        model = Source
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "filename",
            "access_groups",
            "schedule_minutes",
            "max_pages",
            "max_depth",
            "status",
            "error",
            "document_count",
            "failed_document_count",
            "chunk_count",
            "last_synced_at",
            "last_attempt_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_filename(self, obj: Source) -> str:
        return obj.upload.name.rsplit("/", 1)[-1] if obj.upload else ""


_SCHEDULE = {
    "required": False,
    "min_value": 0,
    "max_value": 525_600,
    "help_text": "Re-sync every N minutes; 0 = only when asked.",
}


class SourceCreateSerializer(serializers.Serializer):
    """A text source (`text`, optional `url` to link answers to) or a web source (`url`)."""

    kind = serializers.ChoiceField(choices=["text", "url", "sitemap"])
    name = serializers.CharField(max_length=200)
    text = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=settings.KNOWLEDGE_TEXT_MAX_CHARS,
    )
    url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    access_groups = _groups(required=False, help_text="Groups that may see it; empty = public.")
    schedule_minutes = serializers.IntegerField(**_SCHEDULE)
    max_pages = serializers.IntegerField(
        required=False, min_value=1, max_value=settings.KNOWLEDGE_CRAWL_MAX_PAGES
    )
    max_depth = serializers.IntegerField(required=False, min_value=0, max_value=10)


class SourceUploadSerializer(serializers.Serializer):
    """A file source (Markdown, HTML, PDF, DOCX or plain text), sent as multipart/form-data."""

    name = serializers.CharField(max_length=200)
    upload = serializers.FileField(
        help_text=f"At most {settings.KNOWLEDGE_UPLOAD_MAX_BYTES:,} bytes; "
        "Markdown, HTML, PDF, DOCX or plain text."
    )
    access_groups = _groups(required=False, help_text="Groups that may see it; empty = public.")
    schedule_minutes = serializers.IntegerField(**_SCHEDULE)


class DocumentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    source_id = serializers.UUIDField(source="source.public_id", read_only=True)
    status = serializers.ChoiceField(choices=Document.Status.choices, read_only=True)
    access_groups = serializers.ListField(child=serializers.CharField(), read_only=True)
    url = serializers.CharField(read_only=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "source_id",
            "key",
            "title",
            "url",
            "status",
            "error",
            "version",
            "access_groups",
            "chunk_count",
            "fetched_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SearchSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    limit = serializers.IntegerField(required=False, default=6, min_value=1, max_value=50)
    mode = serializers.ChoiceField(choices=list(SEARCH_MODES), required=False, default="hybrid")
    access_groups = _groups(
        required=False,
        allow_null=True,
        help_text="Also search knowledge shared with these groups; public knowledge only if "
        "absent.",
    )


class SearchResultSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    score = serializers.FloatField()
    found_by = serializers.ChoiceField(choices=["dense", "sparse", "both"])
    text = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    url = serializers.CharField(allow_blank=True)
    heading_path = serializers.ListField(child=serializers.CharField())
    document_id = serializers.UUIDField()
    source_id = serializers.UUIDField()


class SearchResponseSerializer(serializers.Serializer):
    results = SearchResultSerializer(many=True)
