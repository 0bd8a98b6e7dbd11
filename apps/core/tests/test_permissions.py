import pytest

from apps.core import permissions
from apps.tenants.models import Role, WidgetKey
from apps.tenants.services import membership_set


def test_roles_rank(tenant_a):
    t = tenant_a.tenant
    assert permissions.has_role(user=tenant_a.owner, tenant=t, role=Role.OWNER)
    assert permissions.has_role(user=tenant_a.admin, tenant=t, role=Role.ADMIN)
    assert not permissions.has_role(user=tenant_a.admin, tenant=t, role=Role.OWNER)
    assert permissions.has_role(user=tenant_a.agent, tenant=t, role=Role.AGENT)
    assert not permissions.has_role(user=tenant_a.agent, tenant=t, role=Role.ADMIN)
    assert not permissions.has_role(user=tenant_a.outsider, tenant=t, role=Role.AGENT)


def test_user_of_other_tenant_has_no_role(tenant_a, tenant_b):
    assert permissions.membership_role(user=tenant_b.owner, tenant=tenant_a.tenant) is None
    assert list(permissions.tenants_for_user(user=tenant_b.owner)) == [tenant_b.tenant]


def test_object_grant_inside_tenant(tenant_a):
    second = WidgetKey.objects.create(tenant=tenant_a.tenant, name="Docs site")
    agent = tenant_a.agent
    qs = WidgetKey.objects.get_queryset()
    assert not permissions.has_object_perm(user=agent, perm="view_widgetkey", obj=second)
    assert (
        list(
            permissions.filter_granted(
                user=agent, perm="view_widgetkey", queryset=qs, tenant=second.tenant
            )
        )
        == []
    )
    permissions.grant(user=agent, perm="view_widgetkey", obj=second)
    assert permissions.has_object_perm(user=agent, perm="view_widgetkey", obj=second)
    granted = permissions.filter_granted(
        user=agent, perm="view_widgetkey", queryset=qs, tenant=second.tenant
    )
    assert list(granted) == [second]
    # Admins hold every grant of their tenant.
    assert permissions.has_object_perm(user=tenant_a.admin, perm="view_widgetkey", obj=second)
    permissions.revoke(user=agent, perm="view_widgetkey", obj=second)
    assert not permissions.has_object_perm(user=agent, perm="view_widgetkey", obj=second)


def test_grants_never_cross_tenants(tenant_a, tenant_b):
    with pytest.raises(ValueError, match="never cross tenants"):
        permissions.grant(user=tenant_b.agent, perm="view_widgetkey", obj=tenant_a.widget_key)
    # Even a stale grant left behind after someone leaves a tenant gives nothing.
    membership_set(tenant=tenant_a.tenant, user=tenant_b.agent, role=Role.AGENT)
    permissions.grant(user=tenant_b.agent, perm="view_widgetkey", obj=tenant_a.widget_key)
    from apps.tenants.services import membership_remove

    membership_remove(tenant=tenant_a.tenant, user=tenant_b.agent)
    assert not permissions.has_object_perm(
        user=tenant_b.agent, perm="view_widgetkey", obj=tenant_a.widget_key
    )
    qs = WidgetKey.objects.get_queryset()
    assert not permissions.filter_granted(
        user=tenant_b.agent, perm="view_widgetkey", queryset=qs, tenant=tenant_a.tenant
    ).exists()
