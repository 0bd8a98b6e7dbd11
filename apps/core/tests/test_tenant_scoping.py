import pytest

from apps.core.errors import TenantScopeError
from apps.tenants.models import Membership, WidgetKey


def test_query_without_tenant_raises(tenant_a):
    with pytest.raises(TenantScopeError, match="without a tenant"):
        list(Membership.objects.all())
    with pytest.raises(TenantScopeError):
        Membership.objects.filter(role="agent").count()
    with pytest.raises(TenantScopeError):
        Membership.objects.exists()
    with pytest.raises(TenantScopeError):
        Membership.objects.get(pk=1)
    with pytest.raises(TenantScopeError):
        WidgetKey.objects.update(is_active=False)
    with pytest.raises(TenantScopeError):
        WidgetKey.objects.all().delete()
    assert WidgetKey.objects.for_tenant(tenant_a.tenant).filter(is_active=True).count() == 1


def test_for_tenant_none_raises(tenant_a):
    with pytest.raises(TenantScopeError, match="needs a tenant"):
        Membership.objects.for_tenant(None)
    with pytest.raises(TenantScopeError):
        Membership.objects.filter(tenant=None)


def test_for_tenant_returns_only_that_tenants_rows(tenant_a, tenant_b):
    rows = list(Membership.objects.for_tenant(tenant_b.tenant))
    assert len(rows) == 3
    assert {m.tenant_id for m in rows} == {tenant_b.tenant.pk}
    assert not Membership.objects.for_tenant(tenant_b.tenant).filter(user=tenant_a.owner).exists()


def test_related_manager_of_loaded_row_is_scoped(tenant_a):
    assert tenant_a.owner.memberships.count() == 1  # user → memberships: reached from a row


def test_unscoped_is_explicit(tenant_a, tenant_b):
    assert Membership.objects.unscoped().count() == 6
    assert Membership.objects.for_tenants([tenant_a.tenant, tenant_b.tenant]).count() == 6


def test_chained_queryset_keeps_scope(tenant_a):
    qs = Membership.objects.for_tenant(tenant_a.tenant).order_by("role").select_related("user")
    assert [m.role for m in qs.exclude(role="agent")] == ["admin", "owner"]
