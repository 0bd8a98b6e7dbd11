"""Read-only admin for the events outbox."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.admin import TenantScopedAdmin
from apps.events.models import Event
from apps.tenants.models import Role


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    list_display = ("type", "tenant", "created_at", "dispatched_at")
    list_filter = ("type",)
    search_fields = ("type",)
    date_hierarchy = "created_at"
    view_role = Role.ADMIN

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
