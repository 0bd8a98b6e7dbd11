"""Knowledge in the admin: sources (sync now, uploads), documents, chunks, indexes, and a page
to try retrieval. Every page is limited to the tenants the user belongs to."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from apps.core.admin import TenantRoleMixin, TenantScopedAdmin, TenantScopedTabularInline
from apps.core.errors import ApplicationError
from apps.knowledge import services, views
from apps.knowledge.models import Chunk, Document, KnowledgeIndex, Source
from apps.tenants.models import Role

STATUS_COLOURS = {
    "idle": "info",
    "queued": "warning",
    "syncing": "warning",
    "building": "warning",
    "synced": "success",
    "ready": "success",
    "ok": "success",
    "failed": "danger",
    "retired": "info",
}


def _groups_text(groups: list[str]) -> str:
    return ", ".join(groups or [])


def _confirm_page(
    request: HttpRequest, model_admin: Any, *, title: str, text: str, button: str, cancel_url: str
) -> HttpResponse:
    """A page whose POST (with its CSRF token) does what a detail-action link asked for.

    Unfold renders detail actions as links (GET), which another site could make a signed-in
    admin's browser follow; actions that change something therefore only ask on a GET.
    """
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "text": text,
        "button": button,
        "cancel_url": cancel_url,
    }
    return TemplateResponse(request, "admin/knowledge/confirm_action.html", context)


class SourceForm(forms.ModelForm):
    url = forms.URLField(
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text="Web page or sitemap (http/https). Text sources may name a page to cite.",
    )
    access_groups_text = forms.CharField(
        required=False,
        label="Access groups",
        help_text="Comma-separated groups that may see this source; empty = everyone (public).",
    )

    class Meta:
        model = Source
        fields = (
            "tenant",
            "name",
            "kind",
            "url",
            "upload",
            "text",
            "schedule_minutes",
            "max_pages",
            "max_depth",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["access_groups_text"].initial = _groups_text(self.instance.access_groups)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        groups = [g.strip() for g in (data.get("access_groups_text") or "").split(",") if g.strip()]
        data["access_groups"] = groups
        if self.errors:
            return data
        upload = data.get("upload")
        new_upload = upload if isinstance(upload, UploadedFile) else None
        try:
            services.source_validate(
                kind=data.get("kind") or self.instance.kind,
                name=data.get("name") or "",
                url=data.get("url") or None,
                text=data.get("text") or None,
                upload=new_upload,
                upload_kept=bool(self.instance.pk and self.instance.upload),
                schedule_minutes=data.get("schedule_minutes") or 0,
                max_pages=data.get("max_pages") or 1,
                max_depth=data.get("max_depth") or 0,
                access_groups=groups,
            )
        except ApplicationError as exc:
            field = next(iter(exc.extra), None) if exc.extra else None
            target = {"access_groups": "access_groups_text"}.get(field, field)
            self.add_error(target if target in self.fields else None, exc.message)
        return data


class ReadOnlyInline(TenantScopedTabularInline):
    """Rows the pipeline writes, listed under their parent with a link to each: never edited."""

    extra = 0
    can_delete = False
    show_change_link = True
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChunkInline(ReadOnlyInline):
    model = Chunk
    fields = ("position", "heading_path", "token_count", "text")
    readonly_fields = fields


class DocumentInline(ReadOnlyInline):
    model = Document
    fields = ("title", "key", "status", "version", "chunk_count", "error", "fetched_at")
    readonly_fields = fields


@admin.register(Source)
class SourceAdmin(TenantScopedAdmin):
    form = SourceForm
    list_display = (
        "name",
        "kind",
        "status_badge",
        "document_count",
        "failed_document_count",
        "chunk_count",
        "schedule_minutes",
        "last_synced_at",
    )
    list_filter = ("kind", "status")
    search_fields = ("name", "url")
    readonly_fields = (
        "status_badge",
        "progress",
        "error",
        "last_synced_at",
        "document_count",
        "failed_document_count",
        "chunk_count",
        "etag",
        "last_modified",
        "public_id",
    )
    inlines = [DocumentInline]
    actions = ["sync_selected"]
    actions_detail = ["sync_now_detail"]
    actions_list = ["test_retrieval_link"]
    view_role = Role.AGENT
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        content = ["tenant", "name", "kind", "url", "upload", "text", "access_groups_text"]
        schedule = ["schedule_minutes", "max_pages", "max_depth"]
        fieldsets = [(None, {"fields": content}), ("Sync", {"fields": schedule})]
        if obj is not None:
            state = [
                "status_badge",
                "progress",
                "error",
                "last_synced_at",
                ("document_count", "failed_document_count", "chunk_count"),
                ("etag", "last_modified"),
                "public_id",
            ]
            fieldsets.insert(0, ("State", {"fields": state}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["tenant", "kind"]  # a source keeps its tenant and kind
        return fields

    @display(description="Status", label=STATUS_COLOURS)
    def status_badge(self, obj: Source) -> str:
        return obj.status

    @display(description="Progress")
    def progress(self, obj: Source) -> str:
        return render_to_string(
            "admin/knowledge/progress.html",
            {
                "source": obj,
                "tenant_slug": obj.tenant.slug,
                "progress_url": reverse("admin:knowledge_source_progress"),
            },
        )

    # --- writes go through the services -------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        if not self._allowed(request, self.change_role if change else self.add_role, obj):
            raise PermissionDenied("You cannot save rows of this tenant.")
        data = form.cleaned_data
        upload = data.get("upload")
        new_upload = upload if isinstance(upload, UploadedFile) else None
        if change:
            saved = services.source_update(
                tenant=obj.tenant,
                source=obj,
                name=data["name"],
                url=data.get("url") if obj.kind in ("url", "sitemap", "text") else None,
                text=data.get("text") if obj.kind == "text" else None,
                upload=new_upload,
                access_groups=data["access_groups"],
                schedule_minutes=data.get("schedule_minutes") or 0,
                max_pages=data.get("max_pages"),
                max_depth=data.get("max_depth"),
            )
        else:
            saved = services.source_create(
                tenant=obj.tenant,
                kind=data["kind"],
                name=data["name"],
                url=data.get("url") or None,
                text=data.get("text") or None,
                upload=new_upload,
                access_groups=data["access_groups"],
                schedule_minutes=data.get("schedule_minutes") or 0,
                max_pages=data.get("max_pages") or 50,
                max_depth=data.get("max_depth") or 0,
                created_by=request.user,
            )
        obj.__dict__.update(saved.__dict__)
        messages.info(request, f"Sync of “{saved.name}” queued.")

    def delete_model(self, request: HttpRequest, obj: Source) -> None:
        services.source_delete(tenant=obj.tenant, source=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for source in queryset.select_related("tenant"):
            if self._allowed(request, self.delete_role, source):
                services.source_delete(tenant=source.tenant, source=source)

    # --- sync now -------------------------------------------------------------------------------

    @admin.action(description="Sync now")
    def sync_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for source in queryset.select_related("tenant"):
            if self._allowed(request, self.change_role, source):
                services.source_request_sync(tenant=source.tenant, source=source)
                count += 1
        messages.info(request, f"Queued {count} source(s) for sync.")

    @action(description="Sync now", url_path="sync-now")
    def sync_now_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        source = self.get_object(request, object_id)
        if source is None:
            raise Http404("No such source.")
        if not self._allowed(request, self.change_role, source):
            raise PermissionDenied
        if request.method != "POST":
            # Unfold renders detail actions as links (GET), which any other site could make
            # a signed-in admin's browser follow: a GET only asks, the POST (with its CSRF
            # token) queues the sync.
            return _confirm_page(
                request,
                self,
                title=f"Sync “{source.name}” now?",
                text=f"Fetch “{source.name}” again and re-index what changed.",
                button="Sync now",
                cancel_url=reverse("admin:knowledge_source_change", args=[source.pk]),
            )
        services.source_request_sync(tenant=source.tenant, source=source)
        messages.info(request, f"Sync of “{source.name}” queued.")
        return HttpResponseRedirect(reverse("admin:knowledge_source_change", args=[source.pk]))

    @action(description="Test retrieval", url_path="test-retrieval-link")
    def test_retrieval_link(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:knowledge_source_test_retrieval"))

    # --- extra pages ----------------------------------------------------------------------------

    def get_urls(self) -> list:
        extra = [
            path(
                "test-retrieval/",
                self.admin_site.admin_view(self.test_retrieval_view),
                name="knowledge_source_test_retrieval",
            ),
            path(
                "progress/",
                self.admin_site.admin_view(self.progress_view),
                name="knowledge_source_progress",
            ),
        ]
        return extra + super().get_urls()

    def test_retrieval_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        tenants = (
            list(self._tenants(request, self.view_role)) if not request.user.is_superuser else None
        )
        context = views.test_retrieval_context(request, tenants=tenants)
        context.update(
            self.admin_site.each_context(request), title="Test retrieval", opts=self.model._meta
        )
        return views.render_test_retrieval(request, context)

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return views.progress_json(
            request,
            tenants=self._tenants(request, self.view_role)
            if not request.user.is_superuser
            else None,
        )


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
        services.document_delete(tenant=obj.tenant, document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for document in queryset.select_related("tenant"):
            if self._allowed(request, self.delete_role, document):
                services.document_delete(tenant=document.tenant, document=document)


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
        services.chunk_delete(tenant=obj.tenant, chunk=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for chunk in queryset.select_related("tenant"):
            if self._allowed(request, self.delete_role, chunk):
                services.chunk_delete(tenant=chunk.tenant, chunk=chunk)


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
            return _confirm_page(
                request,
                self,
                title="Start a reindex?",
                text="Build a new index of every tenant's knowledge in the background, then "
                "switch to it. Answers keep coming from the current index until then.",
                button="Start reindex",
                cancel_url=reverse("admin:knowledge_knowledgeindex_changelist"),
            )
        try:
            services.index_rebuild_request()
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.info(
                request, "Reindex queued; progress appears here and on /ws/admin/knowledge/."
            )
        return HttpResponseRedirect(reverse("admin:knowledge_knowledgeindex_changelist"))
