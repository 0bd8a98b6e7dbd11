"""Knowledge sources, the documents they yield, their chunks, and the vector indexes built.

The database is the system of record for what is indexed: every point in Qdrant has exactly one
`Chunk` row (same `point_id`), and search results are mapped back to rows, so a point whose row
is gone (a crash between the two writes) is never shown.
"""

from __future__ import annotations

import uuid
from pathlib import PurePath

from django.conf import settings
from django.db import models

from apps.core.models import PublicIdMixin, TenantScopedModel, TimestampedModel


def source_upload_path(instance: Source, filename: str) -> str:
    """Uploads live under MEDIA_ROOT/knowledge/<tenant public id>/, never under a guessable name."""
    name = PurePath(filename).name[-120:] or "upload"
    return f"knowledge/{instance.tenant.public_id}/{uuid.uuid4().hex}/{name}"


class Source(PublicIdMixin, TenantScopedModel):
    """Where knowledge comes from: an uploaded file, a web page, a site, or text."""

    class Kind(models.TextChoices):
        UPLOAD = "upload", "File upload"
        URL = "url", "Web page"
        SITEMAP = "sitemap", "Website (sitemap or crawl)"
        TEXT = "text", "Text"

    class Status(models.TextChoices):
        IDLE = "idle", "Idle"
        QUEUED = "queued", "Queued"
        SYNCING = "syncing", "Syncing"
        SYNCED = "synced", "Synced"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(max_length=2000, blank=True)
    upload = models.FileField(upload_to=source_upload_path, max_length=500, blank=True)
    text = models.TextField(blank=True)
    max_pages = models.PositiveIntegerField(default=50)
    max_depth = models.PositiveIntegerField(default=2)
    access_groups = models.JSONField(
        default=list, blank=True, help_text="Groups allowed to see this source; empty = public."
    )
    schedule_minutes = models.PositiveIntegerField(
        default=0, help_text="Re-sync every N minutes; 0 = only when asked."
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.IDLE, db_index=True
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Conditional GET validators of the single page a URL source fetches.
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    document_count = models.PositiveIntegerField(default=0)
    failed_document_count = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    # Live progress of the current sync (documents done / seen so far).
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["tenant_id", "name"]
        indexes = [models.Index(fields=["status", "schedule_minutes"])]

    def __str__(self) -> str:
        return self.name


class Document(PublicIdMixin, TenantScopedModel):
    """One parsed unit of a source: the file, the page, or the text. Keyed per source."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="documents")
    # The page URL for web sources; "upload" or "text" for single-document sources.
    key = models.CharField(max_length=2000)
    title = models.CharField(max_length=500, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    version = models.PositiveIntegerField(default=0)
    access_groups = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK)
    error = models.TextField(blank=True)
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    # Same-site links found on the page, so an unchanged (304) page still leads the crawl on.
    links = models.JSONField(default=list, blank=True)
    # The parsed text ([[heading_path, text, page], ...]), so a reindex with new chunking or a
    # new model re-chunks without fetching or parsing anything again.
    sections = models.JSONField(default=list, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["source_id", "key"]
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="document_unique_source_key")
        ]

    def __str__(self) -> str:
        return self.title or self.key


class KnowledgeIndex(PublicIdMixin, TimestampedModel):
    """One Qdrant collection built for every tenant's chunks; the alias points at the ready one.

    Not tenant-scoped: one collection holds all tenants (each point carries its tenant and every
    query is filtered by it), so one reindex serves the whole installation.
    """

    class Status(models.TextChoices):
        BUILDING = "building", "Building"
        READY = "ready", "Ready (active)"
        FAILED = "failed", "Failed"
        RETIRED = "retired", "Retired"

    collection = models.CharField(max_length=128, unique=True)
    embedding_model = models.CharField(max_length=200)
    embedding_model_path = models.CharField(max_length=1000, blank=True)
    dimension = models.PositiveIntegerField()
    chunking = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.BUILDING, db_index=True
    )
    documents_total = models.PositiveIntegerField(default=0)
    documents_done = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "knowledge index"
        verbose_name_plural = "knowledge indexes"
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="ready"), name="one_ready_index"
            )
        ]

    def __str__(self) -> str:
        return f"{self.collection} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.READY:
            return 100
        if not self.documents_total:
            return 0
        return min(100, round(100 * self.documents_done / self.documents_total))


class Chunk(TenantScopedModel):
    """A retrievable piece of a document in one index; its Qdrant point has id `point_id`."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="+")
    index = models.ForeignKey(KnowledgeIndex, on_delete=models.CASCADE, related_name="chunks")
    text = models.TextField()
    heading_path = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64, db_index=True)
    # Hash of what the point's payload says besides the text (title, url, groups): a change
    # means the point must be written again even though its text did not change.
    payload_hash = models.CharField(max_length=64, blank=True)
    point_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        ordering = ["document_id", "position"]
        indexes = [models.Index(fields=["document", "index"])]

    def __str__(self) -> str:
        return f"{self.document} #{self.position}"
