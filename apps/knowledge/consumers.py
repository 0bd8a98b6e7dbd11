"""Live sync and reindex progress for the admin: `/ws/admin/knowledge/?tenant=<slug>`.

Staff members of a tenant join that tenant's group and receive its `source.progress` and
`reindex.progress` events (other events of the tenant group, such as chat notifications, are
not forwarded here). Superusers may omit `tenant` and also receive installation-wide reindex
progress. Everything that sends goes through `apps.core.realtime`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core import permissions, realtime
from apps.core.asyncdb import db_async
from apps.core.errors import ApplicationError, PermissionDeniedError, close_code
from apps.tenants.models import Role

FORWARDED_TYPES = frozenset({"source.progress", "reindex.progress"})
CLOSE_UNAUTHENTICATED = 4401


@db_async
def _groups_for(user: Any, slug: str | None) -> list[str]:
    """Groups the user may join; an ApplicationError when they may not watch what they asked."""
    if slug:
        tenant = permissions.resolve_tenant(user=user, slug=slug, min_role=Role.AGENT)
        groups = [realtime.tenant_group(tenant.pk)]
    elif user.is_superuser and user.is_active and user.is_staff:
        groups = []
    else:
        tenants = permissions.staff_tenants(user=user, min_role=Role.AGENT)
        groups = [realtime.tenant_group(t.pk) for t in tenants]
        if not groups:
            raise PermissionDeniedError("You are not a staff member of any tenant.")
    if user.is_superuser:
        groups.append(realtime.knowledge_admin_group())
    return groups


class KnowledgeAdminConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if not getattr(user, "is_authenticated", False):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs((self.scope.get("query_string") or b"").decode())
        slug = (query.get("tenant") or [None])[0]
        try:
            groups = await _groups_for(user, slug)
        except ApplicationError as exc:
            await self.close(code=close_code(exc))
            return
        self.groups_joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The admin only listens; nothing it sends is acted on."""

    async def realtime_event(self, event: dict[str, Any]) -> None:
        payload = event.get("payload") or {}
        if payload.get("type") in FORWARDED_TYPES:
            await self.send_json(payload)
