"""Builders for analytics tests: real conversations through `apps.conversations.services`,
then moved in time (services stamp `now`; a roll-up or drift window needs other days), and a
seeded dashboard (roll-ups, a drift report and an alert) for the dashboard pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from apps.analytics.models import DailyTenantStats, DriftAlert, DriftReport, UnansweredCluster
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


def seed_dashboard(world: Any, *, conversations: int, topic: str, alert: str, source: str) -> None:
    """Two days of roll-ups, one drift report with a cluster and a stale source, one alert."""
    tenant = world.tenant
    today = timezone.localdate()
    for offset, resolved in ((2, 0.5), (1, 0.75)):
        DailyTenantStats.objects.create(
            tenant=tenant,
            day=today - dt.timedelta(days=offset),
            computed_at=timezone.now(),
            conversations_started=conversations,
            conversations_active=conversations,
            conversations_resolved=4,
            conversations_ai_resolved=round(4 * resolved),
            ai_resolution_rate=resolved,
            deflection_rate=0.6,
            handoff_rate=0.2,
            unanswered_rate=0.3,
            answers=10,
            answers_unanswered=3,
            thumbs_up=3,
            thumbs_down=1,
            thumbs_up_rate=0.75,
            csat_count=2,
            csat_average=4.5,
            retrieval_ms_p50=80,
            retrieval_ms_p95=140,
            first_token_ms_p50=600,
            first_token_ms_p95=1400,
            total_ms_p50=2100,
            total_ms_p95=4800,
            prompt_tokens=1200,
            completion_tokens=300,
        )
    end = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    report = DriftReport.objects.create(
        tenant=tenant,
        window_start=end - dt.timedelta(days=7),
        window_end=end,
        baseline_start=end - dt.timedelta(days=35),
        computed_at=timezone.now(),
        stats={},
        stale_sources=[
            {
                "source_id": 1,
                "public_id": "x",
                "name": source,
                "kind": "url",
                "last_synced_at": None,
                "citations": 3,
            }
        ],
    )
    UnansweredCluster.objects.create(
        tenant=tenant,
        report=report,
        label=topic,
        terms=[topic],
        size=4,
        examples=[f"How do I {topic}?"],
    )
    DriftAlert.objects.create(
        tenant=tenant,
        report=report,
        kind="question_shift",
        window_start=report.window_start,
        window_end=report.window_end,
        statistic=0.4,
        p_value=0.001,
        message=alert,
    )
