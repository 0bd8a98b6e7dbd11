"""The admin's live progress websocket: staff of the tenant get its progress events only."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.core import realtime
from apps.knowledge.consumers import KnowledgeAdminConsumer

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(user, query: str = "") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        KnowledgeAdminConsumer.as_asgi(), f"/ws/admin/knowledge/{query}"
    )
    communicator.scope["user"] = user
    return communicator


async def test_agent_receives_own_tenants_source_progress(tenant_a):
    communicator = await _connect(tenant_a.agent, "?tenant=acme")
    connected, _ = await communicator.connect()
    assert connected
    await sync_to_async(realtime.send_source_progress)(
        tenant_id=tenant_a.tenant.pk,
        source_id="s-1",
        status="syncing",
        progress={"documents_done": 2, "documents_total": 5},
    )
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "source.progress"
    assert message["documents_done"] == 2
    # Other events of the tenant group (chat notifications) are not forwarded here.
    await realtime.send_async(realtime.tenant_group(tenant_a.tenant.pk), {"type": "handoff"})
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_other_tenants_owner_is_refused(tenant_a, tenant_b):
    communicator = await _connect(tenant_b.owner, "?tenant=acme")
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4403


async def test_outsider_and_anonymous_are_refused(tenant_a):
    from django.contrib.auth.models import AnonymousUser

    for user, expected in ((tenant_a.outsider, 4403), (AnonymousUser(), 4401)):
        communicator = await _connect(user, "?tenant=acme")
        connected, code = await communicator.connect()
        assert not connected and code == expected


async def test_tenant_staff_without_slug_hear_only_their_tenants(tenant_a, tenant_b):
    communicator = await _connect(tenant_b.agent)
    connected, _ = await communicator.connect()
    assert connected
    await sync_to_async(realtime.send_reindex_progress)(
        index_id="i-1",
        status="building",
        progress={"documents_done": 1},
        tenant_id=tenant_a.tenant.pk,
    )
    await sync_to_async(realtime.send_reindex_progress)(
        index_id="i-1", status="building", progress={"documents_done": 1}
    )
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()
