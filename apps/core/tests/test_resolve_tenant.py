"""Every place that takes a tenant slug from a person resolves it with one function,
`permissions.resolve_tenant`, and refuses a member of tenant B who asks for tenant A.

The chat websocket is not among them: a widget names its tenant with its key, not a slug.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.core import permissions
from apps.core.errors import NotFoundError
from apps.knowledge.consumers import KnowledgeAdminConsumer
from apps.tenants.models import Role
from apps.workspace.consumers import ConsoleConsumer

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED, LET_IN = "refused", "let in"


def _http(path: str):
    def go(user) -> str:
        client = Client()
        client.force_login(user)
        status = client.get(path).status_code
        assert status in {200, 404}, status
        return LET_IN if status == 200 else REFUSED

    return go


def _websocket(consumer: type, path: str):
    async def connect(user) -> str:
        communicator = WebsocketCommunicator(consumer.as_asgi(), path)
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        await communicator.disconnect()
        assert connected or code == 4403, code
        return LET_IN if connected else REFUSED

    return async_to_sync(connect)


PATHS = {
    "api": _http("/api/v1/conversations/?tenant=acme"),
    "knowledge consumer": _websocket(KnowledgeAdminConsumer, "/ws/admin/knowledge/?tenant=acme"),
    "console consumer": _websocket(ConsoleConsumer, "/ws/console/?tenant=acme"),
    "console page": _http("/console/acme/"),
    "dashboard": _http("/dashboard/?tenant=acme"),
}


@pytest.fixture
def resolutions(monkeypatch) -> list[tuple[str, str]]:
    """(slug, outcome) of every call of `permissions.resolve_tenant`."""
    calls: list[tuple[str, str]] = []
    real = permissions.resolve_tenant

    def spy(*, user, slug, min_role=Role.AGENT):
        try:
            tenant = real(user=user, slug=slug, min_role=min_role)
        except NotFoundError:
            calls.append((slug, REFUSED))
            raise
        calls.append((slug, LET_IN))
        return tenant

    monkeypatch.setattr(permissions, "resolve_tenant", spy)
    return calls


@pytest.mark.parametrize("path", PATHS)
def test_member_of_other_tenant_is_refused_through_resolve_tenant(
    path, tenant_a, tenant_b, resolutions
):
    assert PATHS[path](tenant_b.owner) == REFUSED
    assert resolutions == [("acme", REFUSED)]


@pytest.mark.parametrize("path", PATHS)
def test_owner_of_the_tenant_is_let_in_through_resolve_tenant(path, tenant_a, resolutions):
    assert PATHS[path](tenant_a.owner) == LET_IN
    assert resolutions and set(resolutions) == {("acme", LET_IN)}


def test_resolve_tenant_wants_an_active_staff_member_with_the_role(tenant_a, tenant_b):
    tenant = tenant_a.tenant
    assert permissions.resolve_tenant(user=tenant_a.agent, slug="acme") == tenant
    for user, slug, role in [
        (tenant_b.owner, "acme", Role.AGENT),  # another tenant's member
        (tenant_a.outsider, "acme", Role.AGENT),  # nobody's member
        (tenant_a.agent, "acme", Role.ADMIN),  # a role too low
        (tenant_a.owner, "no-such-tenant", Role.AGENT),
        (tenant_a.owner, "", Role.AGENT),
    ]:
        with pytest.raises(NotFoundError, match="No such tenant"):
            permissions.resolve_tenant(user=user, slug=slug, min_role=role)
    tenant_a.owner.is_staff = False
    tenant_a.owner.save(update_fields=["is_staff"])
    with pytest.raises(NotFoundError):
        permissions.resolve_tenant(user=tenant_a.owner, slug="acme")
