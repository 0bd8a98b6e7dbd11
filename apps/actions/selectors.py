"""Reads for actions: the tenant's actions, the audit of calls, and what a conversation waits on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from apps.actions.models import Action, ActionCall, CallStatus


def action_list(*, tenant: Any) -> QuerySet[Action]:
    return Action.objects.for_tenant(tenant).order_by("name")


def action_list_active(*, tenant: Any) -> list[Action]:
    return list(Action.objects.for_tenant(tenant).filter(is_active=True).order_by("name"))


def call_list(*, tenant: Any) -> QuerySet[ActionCall]:
    return (
        ActionCall.objects.for_tenant(tenant)
        .select_related("action", "conversation")
        .order_by("-created_at", "-id")
    )


def call_waiting(*, conversation: Any, status: str) -> ActionCall | None:
    """The conversation's latest call still waiting (for a parameter or a confirmation)."""
    since = timezone.now() - timedelta(seconds=settings.ACTIONS_PENDING_SECONDS)
    return (
        ActionCall.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, status=status, created_at__gte=since)
        .select_related("action")
        .order_by("-id")
        .first()
    )


def call_get(*, conversation: Any, public_id: Any) -> ActionCall | None:
    return (
        ActionCall.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, public_id=public_id)
        .first()
    )


def identity_of(conversation: Any) -> dict[str, Any] | None:
    """Who the customer is, from their signed end-user token (None for an anonymous visitor).

    The conversation's contact is the token's `sub` (checked again on every reconnect,
    apps/conversations/access.py); its email and name came from the same token, and the token's
    other claims are kept in the conversation's context.
    """
    contact = conversation.contact
    if contact is None or not contact.external_id:
        return None
    return {
        "sub": contact.external_id,
        "email": contact.email,
        "name": contact.name,
        "claims": dict((conversation.context or {}).get("claims") or {}),
    }


PENDING_STATUSES = (CallStatus.NEEDS_PARAMETERS, CallStatus.PENDING_CONFIRMATION)


def call_console_rows(*, conversation: Any) -> list[dict[str, Any]]:
    """The conversation's action calls as the agent console shows them, oldest first."""
    calls = (
        ActionCall.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation)
        .order_by("id")
    )
    return [
        {
            "id": str(call.public_id),
            "action": call.action_name,
            "status": call.status,
            "params": call.params,
            "http_status": call.http_status,
            "latency_ms": call.latency_ms,
            "error": call.error,
            "confirmed_by": call.confirmed_by,
            "created_at": call.created_at.isoformat(),
        }
        for call in calls
    ]
