"""Sources in the admin: the form (uploads, access groups), the list with live progress, sync
now, and a page to try retrieval."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from unfold.decorators import action, display

from apps.core.admin import TenantScopedAdmin
from apps.core.errors import ApplicationError
from apps.knowledge import services, views
from apps.knowledge.admin.common import STATUS_COLOURS, DocumentInline, confirm_page
from apps.knowledge.models import Source
from apps.tenants.models import Role


def _groups_text(groups: list[str]) -> str:
    return ", ".join(groups or [])


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
        services.source_delete(source=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for source in queryset.select_related("tenant"):
            if self._allowed(request, self.delete_role, source):
                services.source_delete(source=source)

    # --- sync now -------------------------------------------------------------------------------

    @admin.action(description="Sync now")
    def sync_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for source in queryset.select_related("tenant"):
            if self._allowed(request, self.change_role, source):
                services.source_request_sync(source=source)
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
            return confirm_page(
                request,
                self,
                title=f"Sync “{source.name}” now?",
                text=f"Fetch “{source.name}” again and re-index what changed.",
                button="Sync now",
                cancel_url=reverse("admin:knowledge_source_change", args=[source.pk]),
            )
        services.source_request_sync(source=source)
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
