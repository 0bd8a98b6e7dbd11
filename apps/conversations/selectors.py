"""Reads for contacts, conversations and messages, and the wire shape of a message."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from apps.conversations.models import Contact, Conversation, Message, MessageRole


def conversation_get(*, tenant: Any, public_id: str | uuid.UUID) -> Conversation | None:
    """The tenant's conversation with this public id, or None (also for malformed ids)."""
    try:
        public_id = uuid.UUID(str(public_id))
    except (ValueError, TypeError):
        return None
    return (
        Conversation.objects.for_tenant(tenant)
        .select_related("contact", "assigned_agent")
        .filter(public_id=public_id)
        .first()
    )


def conversation_list(*, tenant: Any, status: str | None = None) -> QuerySet[Conversation]:
    queryset = Conversation.objects.for_tenant(tenant).select_related("contact", "assigned_agent")
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def contact_get_by_external_id(*, tenant: Any, external_id: str) -> Contact | None:
    if not external_id:
        return None
    return Contact.objects.for_tenant(tenant).filter(external_id=external_id).first()


def messages_after(
    *, conversation: Conversation, since: int | None = None, limit: int = 500
) -> list[Message]:
    """Messages with an id above `since` (all of them when None), oldest first.

    With no cursor the newest `limit` messages are returned, so a long conversation replays
    its recent part instead of everything.
    """
    queryset = Message.objects.for_tenant(conversation.tenant_id).filter(conversation=conversation)
    if since is not None:
        return list(queryset.filter(id__gt=since).order_by("id")[:limit])
    newest = list(queryset.order_by("-id")[:limit])
    return newest[::-1]


def message_get(*, conversation: Conversation, message_id: int) -> Message | None:
    return (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, id=message_id)
        .first()
    )


def message_by_client_id(*, conversation: Conversation, client_id: str) -> Message | None:
    return (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, client_id=client_id)
        .first()
    )


def history_for_prompt(*, conversation: Conversation, before_id: int, turns: int) -> list[Message]:
    """The last `turns` customer/assistant/agent messages before `before_id`, oldest first."""
    queryset = (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, id__lt=before_id)
        .filter(role__in=[MessageRole.CUSTOMER, MessageRole.ASSISTANT, MessageRole.AGENT])
        .exclude(content="")
        .order_by("-id")
    )
    return list(queryset[:turns])[::-1]


def citation_wire(citation: dict[str, Any]) -> dict[str, Any]:
    """What the customer sees of a citation (internal ids and scores stay on the server)."""
    return {
        "n": citation.get("n"),
        "title": citation.get("title") or "",
        "url": citation.get("url") or None,
        "snippet": citation.get("snippet") or "",
    }


def message_wire(message: Message) -> dict[str, Any]:
    """A message as the chat protocol sends it (docs/websocket.md)."""
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "citations": [citation_wire(c) for c in message.citations or []],
        "client_id": message.client_id,
        "status": message.status,
    }
