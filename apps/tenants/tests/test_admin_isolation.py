"""Tenant isolation in the admin: nobody sees or edits another tenant's rows."""

import pytest
from django.urls import reverse

from apps.tenants.models import Membership, Role


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login


def test_owner_sees_only_own_tenant_in_changelists(login, tenant_a, tenant_b):
    client = login(tenant_b.owner)
    for name in ("tenants_tenant", "tenants_membership", "tenants_widgetkey"):
        response = client.get(reverse(f"admin:{name}_changelist"))
        assert response.status_code == 200, name
        body = response.content.decode()
        assert tenant_b.tenant.name in body or tenant_b.owner.username in body, name
        assert tenant_a.tenant.name not in body, name
        assert tenant_a.owner.username not in body, name
        assert tenant_a.widget_key.key[:10] not in body, name


@pytest.mark.parametrize(
    "url_name,obj_attr",
    [
        ("admin:tenants_tenant_change", "tenant"),
        ("admin:tenants_widgetkey_change", "widget_key"),
    ],
)
def test_other_tenants_change_page_is_not_found(login, tenant_a, tenant_b, url_name, obj_attr):
    obj = getattr(tenant_a, obj_attr)
    response = login(tenant_b.owner).get(reverse(url_name, args=[obj.pk]))
    # Django's admin redirects to the index with "doesn't exist" for rows outside the queryset.
    assert response.status_code == 302
    assert response.headers["Location"] == reverse("admin:index")


def test_other_tenants_membership_cannot_be_edited_by_post(login, tenant_a, tenant_b):
    membership = Membership.objects.for_tenant(tenant_a.tenant).get(user=tenant_a.agent)
    url = reverse("admin:tenants_membership_change", args=[membership.pk])
    response = login(tenant_b.owner).post(url, {"role": Role.OWNER})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.AGENT


def test_outsider_sees_no_tenant_data(login, tenant_a):
    client = login(tenant_a.outsider)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert tenant_a.tenant.name not in index.content.decode()
    assert client.get(reverse("admin:tenants_membership_changelist")).status_code == 403
    assert client.get(reverse("admin:tenants_tenant_changelist")).status_code == 403


def test_agent_cannot_manage_members(login, tenant_a):
    client = login(tenant_a.agent)
    assert client.get(reverse("admin:tenants_membership_changelist")).status_code == 403
    assert client.get(reverse("admin:tenants_membership_add")).status_code == 403
    # Agents may view their tenant but not change it.
    response = client.get(reverse("admin:tenants_tenant_change", args=[tenant_a.tenant.pk]))
    assert response.status_code == 200
    assert b'name="name"' not in response.content


def test_owner_adds_member_by_email(login, tenant_a):
    client = login(tenant_a.owner)
    response = client.post(
        reverse("admin:tenants_membership_add"),
        {
            "tenant": tenant_a.tenant.pk,
            "email": "new.agent@example.com",
            "display_name": "New Agent",
            "role": Role.AGENT,
            "password": "a-long-initial-password",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    membership = Membership.objects.for_tenant(tenant_a.tenant).get(
        user__email="new.agent@example.com"
    )
    assert membership.role == Role.AGENT
    assert membership.user.is_staff


def test_owner_cannot_add_member_to_other_tenant(login, tenant_a, tenant_b):
    client = login(tenant_b.owner)
    response = client.post(
        reverse("admin:tenants_membership_add"),
        {
            "tenant": tenant_a.tenant.pk,
            "email": "intruder@example.com",
            "role": Role.OWNER,
            "password": "a-long-initial-password",
        },
    )
    # The form only offers the owner's own tenants, so tenant A is not a valid choice.
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert (
        not Membership.objects.for_tenant(tenant_a.tenant)
        .filter(user__email="intruder@example.com")
        .exists()
    )


def test_superuser_sees_every_tenant(client, tenant_a, tenant_b):
    from apps.tenants.tests.factories import UserFactory

    root = UserFactory(is_superuser=True)
    client.force_login(root)
    body = client.get(reverse("admin:tenants_tenant_changelist")).content.decode()
    assert tenant_a.tenant.name in body
    assert tenant_b.tenant.name in body
