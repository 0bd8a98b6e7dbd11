"""The console's live queue: one notification per change of a conversation in it, with the
conversation's fresh card. Written by the workspace's services, routing, assignment and SLA
checks alike."""

from __future__ import annotations

from django.db import transaction

from apps.conversations.models import Conversation
from apps.core import realtime
from apps.workspace import selectors


def queue_changed(conversation: Conversation, *, event: str) -> None:
    """Push the conversation's fresh card to its tenant's console queues once the transaction
    commits (`event`: routed, assigned, waiting, sla_breached, ...)."""
    card_source = conversation
    tenant_id, public_id = conversation.tenant_id, str(conversation.public_id)

    def push() -> None:
        fresh = (
            Conversation.objects.for_tenant(tenant_id)
            .select_related("contact", "assigned_agent")
            .get(pk=card_source.pk)
        )
        realtime.console_queue_send(
            tenant_id=tenant_id,
            conversation_public_id=public_id,
            event=event,
            card=selectors.conversation_card(fresh),
        )

    transaction.on_commit(push)
