"""Documents, chunks and indexes in the admin: read-only rows the pipeline writes, their
deletion, and starting a reindex."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from apps.core.admin import TenantRoleMixin, TenantScopedAdmin
from apps.core.errors import ApplicationError
from apps.knowledge import index_lifecycle, services
from apps.knowledge.admin.common import STATUS_COLOURS, ChunkInline, confirm_page
from apps.knowledge.models import Chunk, Document, KnowledgeIndex
from apps.tenants.models import Role


@admin.register(Document)
class DocumentAdmin(TenantScopedAdmin):
    list_display = ("__str__", "source", "status_badge", "version", "chunk_count", "fetched_at")
    list_filter = ("status",)
    search_fields = ("title", "key", "url")
    readonly_fields = (
        "source",
        "key",
        "title",
        "url",
        "status_badge",
        "error",
        "version",
        "content_hash",
        "access_groups",
        "etag",
        "last_modified",
        "chunk_count",
        "fetched_at",
        "public_id",
    )
    fields = readonly_fields
    inlines = [ChunkInline]
    view_role = Role.AGENT
    delete_role = Role.ADMIN

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # documents come from syncing a source

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @display(description="Status", label=STATUS_COLOURS)
    def status_badge(self, obj: Document) -> str:
        return obj.status

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        services.document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for document in queryset.select_related("tenant"):
            if self._allowed(request, self.delete_role, document):
                services.document_delete(document=document)


@admin.register(Chunk)
class ChunkAdmin(TenantScopedAdmin):
    list_display = ("__str__", "document", "token_count", "index")
    search_fields = ("text",)
    readonly_fields = (
        "document",
        "source",
        "index",
        "position",
        "heading_path",
        "token_count",
        "content_hash",
        "point_id",
        "text",
    )
    fields = readonly_fields
    view_role = Role.AGENT

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # Deleting a chunk (admins) removes its point too: a way to pull one bad passage.
    def delete_model(self, request: HttpRequest, obj: Chunk) -> None:
        services.chunk_delete(chunk=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for chunk in queryset.select_related("tenant"):
            if self._allowed(request, self.delete_role, chunk):
                services.chunk_delete(chunk=chunk)


@admin.register(KnowledgeIndex)
class KnowledgeIndexAdmin(TenantRoleMixin, ModelAdmin):
    """Indexes hold every tenant's chunks: operators (superusers) only."""

    list_display = (
        "collection",
        "status_badge",
        "percent_bar",
        "embedding_model",
        "dimension",
        "created_at",
        "activated_at",
    )
    readonly_fields = (
        "collection",
        "status_badge",
        "percent_bar",
        "embedding_model",
        "embedding_model_path",
        "dimension",
        "chunking",
        "documents_done",
        "documents_total",
        "chunks_done",
        "chunks_total",
        "error",
        "created_at",
        "activated_at",
        "retired_at",
        "finished_at",
    )
    fields = readonly_fields
    actions_list = ["start_reindex"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @display(description="Status", label=STATUS_COLOURS)
    def status_badge(self, obj: KnowledgeIndex) -> str:
        return obj.status

    @display(description="Progress")
    def percent_bar(self, obj: KnowledgeIndex) -> str:
        return format_html(
            '<div data-index="{}" style="min-width:8rem">'
            '<div style="background:#e5e7eb;border-radius:4px;height:8px">'
            '<div class="kn-bar" style="background:#3b82f6;height:8px;border-radius:4px;'
            'width:{}%"></div></div><small>{} / {} documents</small></div>',
            obj.public_id,
            obj.percent,
            obj.documents_done,
            obj.documents_total,
        )

    @action(description="Start reindex", url_path="start-reindex")
    def start_reindex(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_superuser:
            raise PermissionDenied
        if request.method != "POST":
            return confirm_page(
                request,
                self,
                title="Start a reindex?",
                text="Build a new index of every tenant's knowledge in the background, then "
                "switch to it. Answers keep coming from the current index until then.",
                button="Start reindex",
                cancel_url=reverse("admin:knowledge_knowledgeindex_changelist"),
            )
        try:
            index_lifecycle.index_rebuild_request()
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.info(
                request, "Reindex queued; progress appears here and on /ws/admin/knowledge/."
            )
        return HttpResponseRedirect(reverse("admin:knowledge_knowledgeindex_changelist"))
