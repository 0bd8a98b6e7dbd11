"""Daily roll-ups: one `DailyTenantStats` row per tenant and day, recomputed from the records.

Every number counts what happened on the day (in settings.TIME_ZONE), so recomputing a past
day gives the same row unless its records changed (late feedback, a vote changed). The exact
definitions are in docs/analytics.md; keep the two in step.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Avg, Count, FloatField, Q, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from apps.analytics.models import DailyTenantStats
from apps.conversations.models import (
    Conversation,
    ConversationStatus,
    Decision,
    Feedback,
    FeedbackKind,
    Message,
    MessageRole,
    MessageStatus,
)
from apps.events.models import Event, EventType

# An assistant message counts as answered only with one of these decisions and a citation.
ANSWERED_DECISIONS = frozenset({Decision.ANSWER})
# Decisions that gave the customer help from the knowledge (for deflection).
HELPFUL_DECISIONS = frozenset({Decision.ANSWER, Decision.EXTRACTIVE})
# Grounding outcomes counted as declined: the knowledge does not answer the question, or the
# request was off-topic (chit-chat, general knowledge) and was declined politely.
DECLINED_OUTCOMES = frozenset({"declined", "chitchat"})


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The day's [start, end) in the current time zone, as aware datetimes."""
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start, end


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), None without values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def _handed_off_conversation_ids(*, tenant: Any, start: dt.datetime, end: dt.datetime) -> set[int]:
    public_ids = {
        payload.get("conversation_id")
        for payload in Event.objects.for_tenant(tenant)
        .filter(type=EventType.HANDOFF_REQUESTED, created_at__gte=start, created_at__lt=end)
        .values_list("payload", flat=True)
    }
    public_ids.discard(None)
    if not public_ids:
        return set()
    valid = []
    for value in public_ids:
        try:
            valid.append(uuid.UUID(str(value)))
        except (TypeError, ValueError):
            continue
    return set(
        Conversation.objects.for_tenant(tenant)
        .filter(public_id__in=valid)
        .values_list("pk", flat=True)
    )


def rollup_values(*, tenant: Any, day: dt.date) -> dict[str, Any]:
    """The day's numbers for the tenant, as the fields of DailyTenantStats."""
    start, end = day_bounds(day)
    conversations = Conversation.objects.for_tenant(tenant)
    messages = Message.objects.for_tenant(tenant).filter(created_at__gte=start, created_at__lt=end)

    by_role = dict(messages.values_list("role").annotate(n=Count("id")).values_list("role", "n"))

    active_ids = set(
        messages.filter(role=MessageRole.CUSTOMER).values_list("conversation_id", flat=True)
    )
    agent_ids_today = set(
        messages.filter(role=MessageRole.AGENT).values_list("conversation_id", flat=True)
    )
    helped_ids = set(
        messages.filter(
            role=MessageRole.ASSISTANT,
            status=MessageStatus.COMPLETE,
            decision__in=HELPFUL_DECISIONS,
        ).values_list("conversation_id", flat=True)
    )
    handed_off_ids = _handed_off_conversation_ids(tenant=tenant, start=start, end=end)
    deflected_ids = (active_ids & helped_ids) - handed_off_ids - agent_ids_today

    resolved = conversations.filter(
        status=ConversationStatus.RESOLVED, resolved_at__gte=start, resolved_at__lt=end
    )
    resolved_ids = set(resolved.values_list("pk", flat=True))
    touched_by_people = set(
        Message.objects.for_tenant(tenant)
        .filter(conversation_id__in=resolved_ids, role=MessageRole.AGENT)
        .values_list("conversation_id", flat=True)
    )
    ai_resolved = (
        resolved.exclude(pk__in=touched_by_people)
        .filter(handoff_reason="", assigned_agent__isnull=True)
        .count()
    )

    # Assistant answers that finished (complete or failed; one still streaming is not counted).
    answers = messages.filter(
        role=MessageRole.ASSISTANT,
        status__in=[MessageStatus.COMPLETE, MessageStatus.FAILED],
    )
    answer_rows = list(
        answers.values_list(
            "status",
            "decision",
            "citations",
            "retrieval_ms",
            "first_token_ms",
            "total_ms",
            "prompt_tokens",
            "completion_tokens",
            "grounding__outcome",
        )
    )
    unanswered = sum(
        1
        for status, decision, citations, *_ in answer_rows
        if not (status == MessageStatus.COMPLETE and decision in ANSWERED_DECISIONS and citations)
    )
    retrieval = [row[3] for row in answer_rows if row[3] is not None]
    first_token = [row[4] for row in answer_rows if row[4] is not None]
    total = [row[5] for row in answer_rows if row[5] is not None]
    outcomes = [row[8] for row in answer_rows]
    grounded = sum(1 for outcome in outcomes if outcome == "grounded")
    fell_back = sum(1 for outcome in outcomes if outcome == "fell_back")
    declined = sum(1 for outcome in outcomes if outcome in DECLINED_OUTCOMES)

    feedback = Feedback.objects.for_tenant(tenant).filter(created_at__gte=start, created_at__lt=end)
    thumbs = feedback.filter(kind=FeedbackKind.THUMBS).aggregate(
        up=Count("id", filter=Q(rating="up")), down=Count("id", filter=Q(rating="down"))
    )
    csat = (
        feedback.filter(kind=FeedbackKind.CSAT)
        .annotate(score=Cast("rating", output_field=FloatField()))
        .aggregate(n=Count("id"), avg=Avg("score"))
    )
    tokens = answers.aggregate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))

    active = len(active_ids)
    return {
        "conversations_started": conversations.filter(
            created_at__gte=start, created_at__lt=end
        ).count(),
        "conversations_active": active,
        "messages_customer": by_role.get(MessageRole.CUSTOMER, 0),
        "messages_assistant": by_role.get(MessageRole.ASSISTANT, 0),
        "messages_agent": by_role.get(MessageRole.AGENT, 0),
        "messages_system": by_role.get(MessageRole.SYSTEM, 0),
        "conversations_resolved": len(resolved_ids),
        "conversations_ai_resolved": ai_resolved,
        "conversations_handed_off": len(handed_off_ids),
        "conversations_deflected": len(deflected_ids),
        "ai_resolution_rate": _rate(ai_resolved, len(resolved_ids)),
        "deflection_rate": _rate(len(deflected_ids), active),
        "handoff_rate": _rate(len(handed_off_ids & active_ids), active),
        "answers": len(answer_rows),
        "answers_unanswered": unanswered,
        "unanswered_rate": _rate(unanswered, len(answer_rows)),
        "answers_grounded": grounded,
        "answers_fell_back": fell_back,
        "answers_declined": declined,
        "grounded_rate": _rate(grounded, len(answer_rows)),
        "fell_back_rate": _rate(fell_back, len(answer_rows)),
        "declined_rate": _rate(declined, len(answer_rows)),
        "thumbs_up": thumbs["up"],
        "thumbs_down": thumbs["down"],
        "thumbs_up_rate": _rate(thumbs["up"], thumbs["up"] + thumbs["down"]),
        "csat_count": csat["n"],
        "csat_average": float(csat["avg"]) if csat["avg"] is not None else None,
        "retrieval_ms_p50": percentile(retrieval, 50),
        "retrieval_ms_p95": percentile(retrieval, 95),
        "first_token_ms_p50": percentile(first_token, 50),
        "first_token_ms_p95": percentile(first_token, 95),
        "total_ms_p50": percentile(total, 50),
        "total_ms_p95": percentile(total, 95),
        "prompt_tokens": tokens["prompt"] or 0,
        "completion_tokens": tokens["completion"] or 0,
    }


@transaction.atomic
def rollup_compute(*, tenant: Any, day: dt.date) -> DailyTenantStats:
    """Compute the tenant's numbers for `day` and upsert its row (safe to repeat)."""
    if tenant is None:
        raise ValueError("rollup_compute needs a tenant")
    values = rollup_values(tenant=tenant, day=day)
    stats, _ = DailyTenantStats.objects.update_or_create(
        tenant=tenant, day=day, defaults={**values, "computed_at": timezone.now()}
    )
    return stats
