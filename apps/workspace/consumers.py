"""The agent console's websocket: `/ws/console/?tenant=<slug>` (session cookie).

Staff members of the tenant join its group and receive queue changes (a conversation waits
for a person, was taken, handed back or resolved) for the conversations they may work, checked
per event against their inbox grants. A `watch` frame adds one conversation's group, whose
chat frames (messages, tokens, typing, status) are forwarded as `chat` frames; `typing`
frames from the agent reach the customer's widget as `typing` with role `agent`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from apps.core import permissions, realtime
from apps.core.asyncdb import db_async
from apps.core.errors import ApplicationError, NotFoundError, close_code, error_frame
from apps.tenants.models import Role
from apps.workspace import assignment, selectors

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CHAT_TYPES = frozenset(
    {"message", "token", "message_done", "typing", "handoff", "agent_joined", "status"}
)
# Frames that carry a whole message; agents get its console form (strategy, answerability,
# what the guard dropped), which the customer's widget never receives.
MESSAGE_FRAMES = frozenset({"message", "message_done"})


@db_async
def _tenant_for(user: Any, slug: str | None) -> Any:
    return permissions.resolve_tenant(user=user, slug=slug, min_role=Role.AGENT)


@db_async
def _seen(user: Any, tenant: Any) -> str:
    """Record the console as seen; returns the agent's presence ("online", or "away" when they
    switched themselves away)."""
    assignment.agent_presence_seen(tenant=tenant, user=user)
    return assignment.agent_presence_status(tenant=tenant, user=user)


@db_async
def _choose(user: Any, tenant: Any, away: bool) -> str:
    return assignment.agent_presence_choose(tenant=tenant, user=user, away=away)


@db_async
def _card_if_visible(user: Any, tenant: Any, public_id: str) -> dict[str, Any] | None:
    conversation = selectors.conversation_visible_get(user=user, tenant=tenant, public_id=public_id)
    return selectors.conversation_card(conversation) if conversation is not None else None


@db_async
def _visible(user: Any, tenant: Any, public_id: str) -> Any:
    return selectors.conversation_visible_get(user=user, tenant=tenant, public_id=public_id)


@db_async
def _console_message(conversation: Any, message_id: Any) -> dict[str, Any] | None:
    """The console form of a message of the watched conversation (tenant-scoped), or None."""
    message = selectors.transcript_message(conversation=conversation, message_id=message_id)
    return selectors.message_console_wire(message) if message is not None else None


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    tenant: Any = None
    watched: Any = None
    watched_group: str | None = None
    heartbeat: asyncio.Task | None = None

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if not getattr(self.user, "is_authenticated", False):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs((self.scope.get("query_string") or b"").decode())
        slug = (query.get("tenant") or [None])[0]
        try:
            self.tenant = await _tenant_for(self.user, slug)
        except ApplicationError as exc:
            await self.close(code=close_code(exc))
            return
        self.tenant_group = realtime.tenant_group(self.tenant.pk)
        await self.channel_layer.group_add(self.tenant_group, self.channel_name)
        await self.accept()
        # The agent is online while this socket lives; a socket of a process that died simply
        # stops being seen, and the presence sweep marks the agent away after the grace period.
        presence = "online"
        try:
            presence = await _seen(self.user, self.tenant)
        except Exception:
            logger.exception("recording console presence failed")
        await self.send_json({"type": "ready", "tenant": self.tenant.slug, "presence": presence})
        self.heartbeat = asyncio.create_task(self.keep_seen())

    async def keep_seen(self) -> None:
        interval = max(settings.AGENT_PRESENCE_GRACE_SECONDS / 3, 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await _seen(self.user, self.tenant)
            except Exception:
                logger.exception("recording console presence failed")

    async def disconnect(self, code: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat
        if self.tenant is not None:
            await self.channel_layer.group_discard(self.tenant_group, self.channel_name)
        if self.watched_group:
            await self.channel_layer.group_discard(self.watched_group, self.channel_name)

    # --- From the agent ---------------------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.tenant is None or not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "watch":
            await self.watch(str(content.get("conversation_id") or ""))
        elif kind == "typing" and self.watched is not None:
            if isinstance(content.get("active"), bool):
                await realtime.chat_typing_send_async(
                    tenant_id=self.watched.tenant_id,
                    conversation_id=self.watched.pk,
                    role="agent",
                    active=content["active"],
                    name=getattr(self.user, "name", "") or self.user.get_username(),
                )
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "presence" and content.get("status") in {"away", "online"}:
            status = await _choose(self.user, self.tenant, content["status"] == "away")
            await self.send_json({"type": "presence", "status": status})

    async def watch(self, public_id: str) -> None:
        conversation = await _visible(self.user, self.tenant, public_id)
        if self.watched_group:
            await self.channel_layer.group_discard(self.watched_group, self.channel_name)
            self.watched, self.watched_group = None, None
        if conversation is None:
            await self.send_json(error_frame(NotFoundError("No such conversation.")))
            return
        self.watched = conversation
        self.watched_group = realtime.conversation_group(conversation.tenant_id, conversation.pk)
        await self.channel_layer.group_add(self.watched_group, self.channel_name)
        await self.send_json({"type": "watching", "conversation_id": public_id})

    # --- From the groups ---------------------------------------------------------------------

    async def realtime_event(self, event: dict[str, Any]) -> None:
        payload = event.get("payload") or {}
        kind = payload.get("type")
        if kind == "handoff" and "conversation_id" in payload and "status" not in payload:
            # chat_queue_notify: a conversation of the tenant waits for a person.
            card = await _card_if_visible(self.user, self.tenant, payload["conversation_id"])
            if card is not None:
                await self.send_json({"type": "queue", "event": "waiting", "conversation": card})
            return
        if kind == "console.queue":
            card = await _card_if_visible(self.user, self.tenant, payload["conversation_id"])
            if card is not None:
                await self.send_json(
                    {"type": "queue", "event": payload.get("event"), "conversation": card}
                )
            return
        if kind in CHAT_TYPES and self.watched is not None:
            message = payload.get("message")
            if (
                kind in MESSAGE_FRAMES
                and isinstance(message, dict)
                and message.get("role") == "assistant"
                and message.get("status") != "streaming"
            ):
                console = await _console_message(self.watched, message.get("id"))
                if console is not None:
                    payload = {**payload, "message": console}
            await self.send_json(
                {
                    "type": "chat",
                    "conversation_id": str(self.watched.public_id),
                    "frame": payload,
                }
            )
