"""Builders for analytics tests: real conversations through `apps.conversations.services`,
then moved in time (services stamp `now`; a roll-up or drift window needs other days)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from apps.conversations import services as chat
from apps.conversations.models import Conversation, Feedback, Message
from apps.events.models import Event


def at(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone())


def ask(conversation: Conversation, text: str, *, when: dt.datetime | None = None) -> Message:
    message, _ = chat.message_post_customer(conversation=conversation, text=text)
    if when is not None:
        move(message, when)
    return message


def answer(
    conversation: Conversation,
    *,
    decision: str = "answer",
    content: str = "Here is how.",
    citations: list[dict[str, Any]] | None = None,
    retrieval: list[dict[str, Any]] | None = None,
    status: str = "complete",
    when: dt.datetime | None = None,
    **numbers: Any,
) -> Message:
    """An assistant answer as the chat path stores it (start, then finish with its metrics)."""
    message = chat.assistant_message_start(conversation=conversation, model="test-model")
    message = chat.assistant_message_finish(
        message=message,
        content=content,
        status=status,
        decision=decision,
        citations=citations or [],
        retrieval=retrieval or [],
        **numbers,
    )
    if when is not None:
        move(message, when)
    return message


def move(row: Any, when: dt.datetime) -> None:
    """Set a row's created_at (auto_now_add cannot be set through the services)."""
    type(row).objects.for_tenant(row.tenant_id).filter(pk=row.pk).update(created_at=when)
    row.created_at = when


def move_conversation(conversation: Conversation, when: dt.datetime) -> None:
    """Move the conversation, its messages, feedback and events to `when`."""
    move(conversation, when)
    tenant = conversation.tenant_id
    Message.objects.for_tenant(tenant).filter(conversation=conversation).update(created_at=when)
    Feedback.objects.for_tenant(tenant).filter(conversation=conversation).update(created_at=when)
    Event.objects.for_tenant(tenant).filter(
        payload__conversation_id=str(conversation.public_id)
    ).update(created_at=when)


def resolve(conversation: Conversation, *, when: dt.datetime | None = None) -> Conversation:
    conversation = chat.conversation_resolve(conversation=conversation)
    if when is not None:
        Conversation.objects.for_tenant(conversation.tenant_id).filter(pk=conversation.pk).update(
            resolved_at=when
        )
        conversation.resolved_at = when
    return conversation


def citation(n: int = 1, *, document_id: int | None = None) -> dict[str, Any]:
    return {
        "n": n,
        "title": "Help",
        "url": "",
        "snippet": "…",
        "chunk_id": 1,
        "document_id": document_id,
        "score": 0.8,
    }
