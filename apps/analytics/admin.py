"""Admin for analytics rows, each tenant's to its own owners and admins."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from unfold.decorators import action

from apps.analytics.insights import insights_csv
from apps.analytics.models import ConversationInsight, DailyTenantStats, DriftAlert
from apps.core.admin import TenantScopedAdmin
from apps.tenants.models import Role


class ReadOnlyTenantAdmin(TenantScopedAdmin):
    """Computed rows: nobody adds or edits them by hand."""

    view_role = Role.ADMIN

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DailyTenantStats)
class DailyTenantStatsAdmin(ReadOnlyTenantAdmin):
    list_display = (
        "day",
        "tenant",
        "conversations_started",
        "ai_resolution_rate",
        "deflection_rate",
        "handoff_rate",
        "unanswered_rate",
        "csat_average",
    )
    date_hierarchy = "day"


@admin.register(DriftAlert)
class DriftAlertAdmin(ReadOnlyTenantAdmin):
    list_display = ("window_end", "tenant", "kind", "message", "p_value")
    list_filter = ("kind",)


@admin.register(ConversationInsight)
class ConversationInsightAdmin(ReadOnlyTenantAdmin):
    list_display = ("conversation", "tenant", "status", "topic_list", "summarized_at")
    list_filter = ("status",)
    search_fields = ("summary",)
    list_select_related = ("conversation",)
    actions = ["export_csv"]

    @admin.display(description="topics")
    def topic_list(self, obj: ConversationInsight) -> str:
        return ", ".join(obj.topics or [])

    @action(description="Export selected as CSV")
    def export_csv(self, request: HttpRequest, queryset: Any) -> HttpResponse:
        # The queryset comes from get_queryset, which is already limited to the viewer's tenants.
        response = HttpResponse(
            insights_csv(queryset.select_related("conversation")), content_type="text/csv"
        )
        response["Content-Disposition"] = 'attachment; filename="conversation-insights.csv"'
        return response
