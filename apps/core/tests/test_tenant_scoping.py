import pytest

from apps.core.errors import TenantScopeError
from apps.core.models import TenantScopedModel
from apps.tenants.models import Membership, Role, WidgetKey
from apps.tenants.services import membership_set


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


def _index_with_chunks_of(*tenants):
    """One knowledge index (it serves every tenant) with a chunk of each tenant in it."""
    from apps.knowledge.models import Chunk, Document, KnowledgeIndex, Source

    index = KnowledgeIndex.objects.create(
        collection="scoping-test", embedding_model="test", dimension=4
    )
    for tenant in tenants:
        source = Source.objects.create(tenant=tenant, name="FAQ", kind="text", text="x")
        document = Document.objects.create(tenant=tenant, source=source, key="faq")
        Chunk.objects.create(
            tenant=tenant,
            document=document,
            source=source,
            index=index,
            text="x",
            position=0,
            token_count=1,
            content_hash="0" * 64,
        )
    return index


def test_related_manager_of_a_tenant_owned_row_is_scoped(tenant_a):
    from apps.conversations.models import Conversation, Message

    conversation = Conversation.objects.create(tenant=tenant_a.tenant)
    Message.objects.create(tenant=tenant_a.tenant, conversation=conversation, content="hi")
    # A tenant-owned row's children are of its tenant: nothing to scope again.
    assert conversation.messages.count() == 1
    assert [m.content for m in conversation.messages.all()] == ["hi"]


def test_related_manager_of_a_user_never_returns_another_tenants_rows(tenant_a, tenant_b):
    from apps.conversations.models import Conversation

    person = tenant_a.agent
    membership_set(tenant=tenant_b.tenant, user=person, role=Role.AGENT)
    for world in (tenant_a, tenant_b):
        Conversation.objects.create(tenant=world.tenant, assigned_agent=person)
    # A user spans tenants: their related managers fail closed like `objects`...
    for manager in (person.memberships, person.assigned_conversations):
        with pytest.raises(TenantScopeError, match="without a tenant"):
            manager.count()
        with pytest.raises(TenantScopeError):
            list(manager.all())
        with pytest.raises(TenantScopeError):
            manager.filter(pk__gt=0).exists()
        # ...and give one tenant's rows once scoped.
        rows = list(manager.for_tenant(tenant_a.tenant))
        assert len(rows) == 1
        assert {row.tenant_id for row in rows} == {tenant_a.tenant.pk}


def test_related_manager_of_an_index_never_returns_another_tenants_rows(tenant_a, tenant_b):
    index = _index_with_chunks_of(tenant_a.tenant, tenant_b.tenant)
    with pytest.raises(TenantScopeError, match="without a tenant"):
        index.chunks.count()
    with pytest.raises(TenantScopeError):
        list(index.chunks.all())
    rows = list(index.chunks.for_tenant(tenant_b.tenant))
    assert [row.tenant_id for row in rows] == [tenant_b.tenant.pk]
    assert index.chunks.unscoped().count() == 2  # every tenant's, said out loud


def test_unscoped_is_the_only_bypass():
    # No second, plain manager that a search for `.unscoped()` would not find.
    from django.apps import apps

    for model in apps.get_models():
        if issubclass(model, TenantScopedModel):
            names = {manager.name for manager in model._meta.managers}
            assert names == {"objects"}, (model.__name__, names)


def test_unscoped_is_explicit(tenant_a, tenant_b):
    assert Membership.objects.unscoped().count() == 6
    assert Membership.objects.for_tenants([tenant_a.tenant, tenant_b.tenant]).count() == 6


def test_chained_queryset_keeps_scope(tenant_a):
    qs = Membership.objects.for_tenant(tenant_a.tenant).order_by("role").select_related("user")
    assert [m.role for m in qs.exclude(role="agent")] == ["admin", "owner"]
