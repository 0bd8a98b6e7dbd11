"""Who may do what. Every django-guardian call in the project lives in this module.

Two layers, always in this order:
1. the tenant: a user acts only inside tenants they are a member of, with a role
   (owner > admin > agent); superusers operate the whole installation;
2. inside a tenant, django-guardian object grants decide which agent sees which inbox or
   source. Grants never replace the tenant filter: callers scope by tenant first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Model, QuerySet
from guardian.shortcuts import assign_perm, get_objects_for_user, get_users_with_perms, remove_perm

from apps.core.errors import NotFoundError
from apps.tenants.models import ROLE_RANK, Membership, Role, Tenant


def membership_role(*, user: Any, tenant: Tenant) -> Role | None:
    if not getattr(user, "is_authenticated", False) or tenant is None:
        return None
    role = (
        Membership.objects.for_tenant(tenant).filter(user=user).values_list("role", flat=True)
    ).first()
    return Role(role) if role else None


def has_role(*, user: Any, tenant: Tenant, role: Role) -> bool:
    """True if the user's role in the tenant is at least `role`."""
    if getattr(user, "is_superuser", False):
        return True
    current = membership_role(user=user, tenant=tenant)
    return current is not None and ROLE_RANK[current] >= ROLE_RANK[role]


def tenants_for_user(*, user: Any, min_role: Role = Role.AGENT) -> QuerySet[Tenant]:
    """Tenants the user may act in with at least `min_role` (all tenants for superusers)."""
    if not getattr(user, "is_authenticated", False):
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    roles = [r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[min_role]]
    return Tenant.objects.filter(
        pk__in=Membership.objects.unscoped().filter(user=user, role__in=roles).values("tenant_id"),
        is_active=True,
    )


def staff_tenants(*, user: Any, min_role: Role = Role.AGENT) -> QuerySet[Tenant]:
    """Tenants an active staff account works in with at least `min_role` (all for superusers).

    The staff flag is the switch for every tenant-facing tool (admin, console, dashboard, the
    API with a session, the admin websockets): clearing it locks a person out of all of them.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active or not user.is_staff:
        return Tenant.objects.none()
    return tenants_for_user(user=user, min_role=min_role)


def resolve_tenant(*, user: Any, slug: str | None, min_role: Role = Role.AGENT) -> Tenant:
    """The tenant `slug` names, if `user` may act in it with at least `min_role`.

    Every place that takes a tenant slug from a person (API, consoles, dashboards, websockets)
    resolves it here. Anything else raises `NotFoundError`: a tenant that is not theirs looks
    exactly like one that does not exist.
    """
    tenant = staff_tenants(user=user, min_role=min_role).filter(slug=slug).first() if slug else None
    if tenant is None:
        raise NotFoundError("No such tenant.")
    return tenant


# --- Object grants inside a tenant (django-guardian) -------------------------------------------


def _check_same_tenant(*, user: Any, obj: Model) -> None:
    tenant = obj.tenant
    if not user.is_superuser and membership_role(user=user, tenant=tenant) is None:
        raise ValueError(f"{user} is not a member of {tenant}; grants never cross tenants")


def grant(*, user: Any, perm: str, obj: Model) -> None:
    """Give `user` the permission `perm` (codename) on `obj`, which must be tenant-owned."""
    _check_same_tenant(user=user, obj=obj)
    assign_perm(perm, user, obj)


def revoke(*, user: Any, perm: str, obj: Model) -> None:
    remove_perm(perm, user, obj)


def has_object_perm(*, user: Any, perm: str, obj: Model) -> bool:
    """Object grant check; owners and admins of the object's tenant hold every grant."""
    if has_role(user=user, tenant=obj.tenant, role=Role.ADMIN):
        return True
    if membership_role(user=user, tenant=obj.tenant) is None:
        return False
    return user.has_perm(f"{obj._meta.app_label}.{perm}", obj)


def filter_granted(*, user: Any, perm: str, queryset: QuerySet, tenant: Tenant) -> QuerySet:
    """Rows of `queryset` in `tenant` that `user` holds `perm` on (all of them for admins)."""
    scoped = queryset.for_tenant(tenant)
    if has_role(user=user, tenant=tenant, role=Role.ADMIN):
        return scoped
    if membership_role(user=user, tenant=tenant) is None:
        return scoped.none()
    granted = get_objects_for_user(
        user,
        f"{queryset.model._meta.app_label}.{perm}",
        klass=queryset.model.objects.for_tenant(tenant),
        accept_global_perms=False,
    )
    return scoped.filter(pk__in=granted.values("pk"))


def users_granted(*, obj: Model) -> Iterable[Any]:
    return get_users_with_perms(obj, with_superusers=False, with_group_users=True)
