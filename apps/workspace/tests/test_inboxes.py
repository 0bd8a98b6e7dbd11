"""Inboxes, grants and which conversations an agent sees (real PostgreSQL)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.conversations import services as chat
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create
from apps.tenants.tests.factories import UserFactory
from apps.workspace import selectors, services
from apps.workspace.models import Inbox

pytestmark = pytest.mark.django_db


def _conversation(world):
    return chat.conversation_start(tenant=world.tenant, widget_key=world.widget_key)


def test_default_inbox_is_created_once_per_tenant(tenant_a, tenant_b):
    first = selectors.inbox_default(tenant=tenant_a.tenant)
    again = selectors.inbox_default(tenant=tenant_a.tenant)
    other = selectors.inbox_default(tenant=tenant_b.tenant)
    assert first.pk == again.pk and first.is_default
    assert other.pk != first.pk
    assert Inbox.objects.for_tenant(tenant_a.tenant).count() == 1


def test_unrouted_conversation_belongs_to_the_default_inbox(tenant_a):
    conversation = _conversation(tenant_a)
    assert selectors.conversation_inbox(conversation=conversation).is_default


def test_agent_without_grant_sees_nothing_and_admins_see_everything(tenant_a):
    conversation = _conversation(tenant_a)
    agent, tenant = tenant_a.agent, tenant_a.tenant
    assert not selectors.conversations_visible(user=agent, tenant=tenant).exists()
    for boss in (tenant_a.owner, tenant_a.admin):
        assert list(selectors.conversations_visible(user=boss, tenant=tenant)) == [conversation]
    services.inbox_grant(inbox=selectors.inbox_default(tenant=tenant), agent=agent)
    assert list(selectors.conversations_visible(user=agent, tenant=tenant)) == [conversation]


def test_grant_on_one_inbox_shows_only_its_conversations(tenant_a):
    tenant, agent = tenant_a.tenant, tenant_a.agent
    billing = services.inbox_create(tenant=tenant, name="Billing")
    in_default, in_billing = _conversation(tenant_a), _conversation(tenant_a)
    services.conversation_route(conversation=in_billing, inbox=billing)
    services.inbox_grant(inbox=billing, agent=agent)
    assert list(selectors.conversations_visible(user=agent, tenant=tenant)) == [in_billing]
    services.inbox_revoke(inbox=billing, agent=agent)
    assert not selectors.conversations_visible(user=agent, tenant=tenant).exists()
    assert in_default.pk in {
        c.pk for c in selectors.conversations_visible(user=tenant_a.admin, tenant=tenant)
    }


def test_grants_never_cross_tenants(tenant_a, tenant_b):
    inbox = selectors.inbox_default(tenant=tenant_a.tenant)
    with pytest.raises(services.ApplicationError):
        services.inbox_grant(inbox=inbox, agent=tenant_b.agent)
    _conversation(tenant_a)
    for user in (tenant_b.owner, tenant_b.agent, tenant_b.outsider, tenant_a.outsider):
        assert not selectors.conversations_visible(user=user, tenant=tenant_a.tenant).exists()


def test_routing_to_another_tenants_inbox_is_refused(tenant_a, tenant_b):
    conversation = _conversation(tenant_a)
    with pytest.raises(services.NotFoundError):
        services.conversation_route(
            conversation=conversation, inbox=selectors.inbox_default(tenant=tenant_b.tenant)
        )


def test_a_new_tenant_gets_its_default_inbox_and_reading_it_writes_nothing(
    db, django_assert_num_queries
):
    tenant = tenant_create(name="Fresh Co", slug="fresh-co")
    assert Inbox.objects.for_tenant(tenant).filter(is_default=True).count() == 1
    with django_assert_num_queries(1):  # one read, no get-or-create
        inbox = selectors.inbox_default(tenant=tenant)
    assert inbox.is_default and inbox.name == selectors.DEFAULT_INBOX_NAME


def test_a_tenant_added_in_the_admin_gets_its_default_inbox(client):
    client.force_login(UserFactory(is_superuser=True))
    url = reverse("admin:tenants_tenant_add")
    page = client.get(url)
    data = {
        "name": "Admin Co",
        "slug": "admin-co",
        "is_active": "on",
        "allowed_origins": "[]",
        "unanswerable_action": Tenant._meta.get_field("unanswerable_action").default,
        "default_language": Tenant._meta.get_field("default_language").default,
        "settings": "{}",
    }
    for inline in page.context["inline_admin_formsets"]:  # no widget keys or people yet
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    tenant = Tenant.objects.get(slug="admin-co")
    assert selectors.inbox_default(tenant=tenant).is_default
