"""Service levels of conversations handed to a person: the clock started at each handoff
(first response and resolution targets of the inbox), and the sweep that records each missed
target once, as an `sla.breached` event and a console queue update."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.conversations.models import Conversation, ConversationStatus, Message, MessageRole
from apps.events.models import EventType
from apps.events.services import event_record
from apps.workspace.models import ConversationInbox, Inbox
from apps.workspace.queue import queue_changed


def sla_start(*, conversation: Conversation, inbox: Inbox, now: datetime | None = None) -> None:
    """Start the SLA clock of a conversation handed to a person (restarted by each handoff)."""
    now = now or timezone.now()

    def due(minutes: int) -> datetime | None:
        return now + timedelta(minutes=minutes) if minutes else None

    ConversationInbox.objects.update_or_create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        defaults={
            "inbox": inbox,
            "handed_off_at": now,
            "first_response_due_at": due(inbox.first_response_minutes),
            "resolution_due_at": due(inbox.resolution_minutes),
            "first_response_breached_at": None,
            "resolution_breached_at": None,
        },
    )


SLA_KINDS = {
    "first_response": ("first_response_due_at", "first_response_breached_at"),
    "resolution": ("resolution_due_at", "resolution_breached_at"),
}


def _sla_met(row: ConversationInbox, kind: str, due: datetime) -> bool | None:
    """True when the target was met, False when missed, None when it no longer applies."""
    conversation = row.conversation
    resolved_in_time = conversation.resolved_at is not None and conversation.resolved_at <= due
    if kind == "resolution":
        if resolved_in_time:
            return True
        return None if conversation.status == ConversationStatus.OPEN else False
    answered = (
        Message.objects.for_tenant(row.tenant_id)
        .filter(
            conversation_id=row.conversation_id,
            role=MessageRole.AGENT,
            created_at__gte=row.handed_off_at,
            created_at__lte=due,
        )
        .exists()
    )
    if answered or resolved_in_time:
        return True
    # Handed back to the assistant before anyone replied: nobody is waiting any more.
    return None if conversation.status == ConversationStatus.OPEN else False


def sla_check(*, now: datetime | None = None) -> int:
    """Flag conversations past a target (every tenant): each breach once, as an `sla.breached`
    event and a console queue update. Returns how many breaches were recorded."""
    now = now or timezone.now()
    recorded = 0
    for kind, (due_field, breached_field) in SLA_KINDS.items():
        overdue = (
            ConversationInbox.objects.unscoped()
            .filter(**{f"{due_field}__lt": now, f"{breached_field}__isnull": True})
            .select_related("conversation", "conversation__tenant", "inbox")
            .order_by(due_field)[:500]
        )
        for row in overdue:
            due = getattr(row, due_field)
            met = _sla_met(row, kind, due)
            if met is not False:
                # Met, or moot: stop watching this target.
                ConversationInbox.objects.for_tenant(row.tenant_id).filter(pk=row.pk).update(
                    **{due_field: None}
                )
                continue
            recorded += _sla_breach(row, kind=kind, due=due, now=now)
    return recorded


@transaction.atomic
def _sla_breach(row: ConversationInbox, *, kind: str, due: datetime, now: datetime) -> int:
    due_field, breached_field = SLA_KINDS[kind]
    # Conditional update: of two sweeps racing, exactly one records the breach.
    flagged = (
        ConversationInbox.objects.for_tenant(row.tenant_id)
        .filter(pk=row.pk, **{due_field: due, f"{breached_field}__isnull": True})
        .update(**{breached_field: now})
    )
    if not flagged:
        return 0
    conversation = row.conversation
    event_record(
        tenant=conversation.tenant,
        type=EventType.SLA_BREACHED,
        payload={
            "conversation_id": str(conversation.public_id),
            "inbox_id": str(row.inbox.public_id),
            "inbox": row.inbox.name,
            "target": kind,
            "due_at": due.isoformat(),
            "breached_at": now.isoformat(),
            "assigned_agent_id": conversation.assigned_agent_id,
        },
    )
    queue_changed(conversation, event="sla_breached")
    return 1
