"""Admin base classes that keep every tenant's rows to its own members.

A non-superuser sees a model's rows only for the tenants where their role is at least the
model's `view_role`, edits with `change_role`, and so on. Foreign-key choices are limited the
same way, so an admin form never offers (or accepts) another tenant's rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, StackedInline, TabularInline

from apps.core import permissions
from apps.core.models import TenantScopedModel
from apps.tenants.models import Role, Tenant


class TenantRoleMixin:
    view_role: Role = Role.AGENT
    add_role: Role = Role.ADMIN
    change_role: Role = Role.ADMIN
    delete_role: Role = Role.ADMIN

    def _tenants(self, request: HttpRequest, role: Role) -> QuerySet[Tenant]:
        cache = request.__dict__.setdefault("_tenant_cache", {})
        if role not in cache:
            cache[role] = list(permissions.tenants_for_user(user=request.user, min_role=role))
        return cache[role]

    def _obj_tenant(self, obj: Model) -> Tenant:
        return obj if isinstance(obj, Tenant) else obj.tenant

    def _allowed(self, request: HttpRequest, role: Role, obj: Model | None = None) -> bool:
        if not request.user.is_active or not request.user.is_staff:
            return False
        if request.user.is_superuser:
            return True
        tenants = self._tenants(request, role)
        if obj is None:
            return bool(tenants)
        return self._obj_tenant(obj) in tenants

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.view_role)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._allowed(request, self.view_role, obj)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._allowed(request, self.add_role)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._allowed(request, self.change_role, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._allowed(request, self.delete_role, obj)


class TenantScopedAdmin(TenantRoleMixin, ModelAdmin):
    """ModelAdmin for TenantScopedModel subclasses."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = self.model.objects.get_queryset()
        if request.user.is_superuser:
            return queryset.unscoped()
        return queryset.for_tenants(self._tenants(request, self.view_role))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.related_model
        if not request.user.is_superuser:
            if related is Tenant:
                kwargs["queryset"] = Tenant.objects.filter(
                    pk__in=[t.pk for t in self._tenants(request, self.change_role)]
                )
            elif issubclass(related, TenantScopedModel):
                kwargs["queryset"] = related.objects.for_tenants(
                    self._tenants(request, self.change_role)
                )
        elif issubclass(related, TenantScopedModel):
            kwargs["queryset"] = related.objects.unscoped()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        if not self._allowed(request, self.change_role if change else self.add_role, obj):
            raise PermissionDenied("You cannot save rows of this tenant.")
        super().save_model(request, obj, form, change)

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser or len(self._tenants(request, self.view_role)) > 1:
            filters.insert(0, ("tenant", admin.RelatedOnlyFieldListFilter))
        return filters


class TenantScopedTabularInline(TenantRoleMixin, TabularInline):
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = self.model.objects.get_queryset()
        if request.user.is_superuser:
            return queryset.unscoped()
        return queryset.for_tenants(self._tenants(request, self.view_role))

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._allowed(request, self.add_role, obj)


class TenantScopedStackedInline(TenantScopedTabularInline, StackedInline):
    pass
