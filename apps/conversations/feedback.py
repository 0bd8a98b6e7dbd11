"""Feedback from customers: thumbs on an answer or a CSAT score for the conversation, recorded
with a `feedback.received` event; a second vote replaces the first."""

from __future__ import annotations

from django.db import transaction

from apps.conversations.models import Conversation, Feedback, FeedbackKind, Message
from apps.core.errors import ApplicationError
from apps.events.models import EventType
from apps.events.services import event_record

THUMBS_RATINGS = frozenset({"up", "down"})


@transaction.atomic
def feedback_record(
    *,
    conversation: Conversation,
    kind: str,
    rating: str | int,
    message: Message | None = None,
    comment: str = "",
) -> Feedback:
    """Thumbs on an answer or a CSAT score; a second vote replaces the first."""
    kind = FeedbackKind(kind)
    rating = str(rating)
    if kind == FeedbackKind.THUMBS:
        if message is None or message.conversation_id != conversation.pk:
            raise ApplicationError("Thumbs need a message of this conversation.", code="invalid")
        if rating not in THUMBS_RATINGS:
            raise ApplicationError("rating must be up or down.", code="invalid")
        lookup = {"message": message, "kind": kind}
    else:
        if rating not in {"1", "2", "3", "4", "5"}:
            raise ApplicationError("score must be a whole number from 1 to 5.", code="invalid")
        lookup = {"conversation": conversation, "kind": kind}
    feedback, _ = Feedback.objects.update_or_create(
        tenant_id=conversation.tenant_id,
        **lookup,
        defaults={
            "conversation": conversation,
            "message": message,
            "rating": rating,
            "comment": (comment or "")[:2000],
        },
    )
    event_record(
        tenant=conversation.tenant,
        type=EventType.FEEDBACK_RECEIVED,
        payload={
            "conversation_id": str(conversation.public_id),
            "message_id": message.pk if message else None,
            "kind": kind.value,
            "rating": rating,
            "comment": feedback.comment,
        },
    )
    return feedback
