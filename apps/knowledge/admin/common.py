"""What the knowledge admin pages share: status colours, the confirmation page, and the
read-only inlines of the rows the pipeline writes."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from apps.core.admin import TenantScopedTabularInline
from apps.knowledge.models import Chunk, Document

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


def confirm_page(
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
