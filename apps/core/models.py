"""Tenant scoping for every tenant-owned model.

`Model.objects` fails closed: a queryset is only evaluated once it is filtered by a tenant
(`for_tenant(t)`, `for_tenants([...])`, or `filter(tenant=...)`), reached through a related
manager of a loaded tenant-owned row or of a `Tenant` (`conversation.messages`), or explicitly
opened with `.unscoped()`, the one escape hatch. A related manager of anything else
(`user.memberships`, `index.chunks`) spans tenants, so it fails closed like `objects`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Self

from django.db import models

from apps.core.errors import TenantScopeError

_TENANT_LOOKUPS = frozenset(
    {"tenant", "tenant_id", "tenant__in", "tenant_id__in", "tenant__pk", "tenant__slug"}
)


class TenantQuerySet(models.QuerySet):
    """A queryset that refuses to run until it is scoped to a tenant."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tenant_scoped = False

    def _clone(self) -> Self:
        clone = super()._clone()
        clone._tenant_scoped = self._tenant_scoped
        return clone

    def _scoped(self) -> Self:
        self._tenant_scoped = True
        return self

    def for_tenant(self, tenant: Any) -> Self:
        if tenant is None:
            raise TenantScopeError(f"{self.model.__name__}: for_tenant() needs a tenant, got None")
        return self.filter(tenant=tenant)

    def for_tenants(self, tenants: Iterable[Any]) -> Self:
        tenants = list(tenants)
        return super().filter(tenant__in=tenants)._scoped()

    def unscoped(self) -> Self:
        """Every tenant's rows. For migrations, system tasks and superuser tools only."""
        return self._clone()._scoped()

    def filter(self, *args: Any, **kwargs: Any) -> Self:
        for key in _TENANT_LOOKUPS.intersection(kwargs):
            if kwargs[key] is None:
                raise TenantScopeError(f"{self.model.__name__}: filter({key}=None) is not a scope")
        clone = super().filter(*args, **kwargs)
        if _TENANT_LOOKUPS.intersection(kwargs):
            clone._tenant_scoped = True
        return clone

    def _check_scope(self) -> None:
        if not self._tenant_scoped:
            raise TenantScopeError(
                f"{self.model.__name__} queried without a tenant: use .for_tenant(tenant) "
                "(or .unscoped() where every tenant is meant)"
            )

    # Every way a queryset reaches the database goes through one of these.
    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._check_scope()
        super()._fetch_all()

    def count(self) -> int:
        self._check_scope()
        return super().count()

    def exists(self) -> bool:
        self._check_scope()
        return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._check_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._check_scope()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._check_scope()
        return super().delete()

    def iterator(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        self._check_scope()
        return super().iterator(*args, **kwargs)

    def contains(self, obj: Any) -> bool:
        self._check_scope()
        return super().contains(obj)


def _owns_one_tenant(instance: Any) -> bool:
    """Whether every row related to `instance` belongs to one tenant: it is a tenant-owned row
    (children share their parent's tenant) or the tenant itself."""
    return isinstance(instance, TenantScopedModel) or instance._meta.label == "tenants.Tenant"


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    def get_queryset(self) -> TenantQuerySet:
        queryset = super().get_queryset()
        # Related managers (conversation.messages) of a tenant-owned row start from a row that
        # was already scoped; those of a user or an index span tenants and stay unscoped.
        instance = getattr(self, "instance", None)
        if instance is not None and _owns_one_tenant(instance):
            queryset._tenant_scoped = True
        return queryset


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TenantScopedModel(TimestampedModel):
    """Base for every tenant-owned row: a tenant foreign key and the fail-closed manager."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")

    # The one manager, so it is every model's default whatever its other bases (admin, forms
    # and related managers all use it): `.unscoped()` stays the one way to every tenant's rows.
    # Django's internals (related lookups, the deletion collector) use the automatic plain
    # `_base_manager`.
    objects = TenantManager()

    class Meta:
        abstract = True


class PublicIdMixin(models.Model):
    """A random public id for rows that appear in URLs and APIs, so ids reveal no counts."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        abstract = True


class WorkerHeartbeat(models.Model):
    """Last time each Celery worker ran the heartbeat task, for /readyz."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    class Meta:
        verbose_name = "worker heartbeat"

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
