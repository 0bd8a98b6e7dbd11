"""What the drift check (drift.py) reads of one tenant in a time window: customer questions,
the top retrieval score of each answer, the questions before unanswered or thumbs-down answers,
and the sources cited in answers whose last sync is stale."""

from __future__ import annotations

import bisect
import datetime as dt
from collections import Counter
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.analytics.services import ANSWERED_DECISIONS
from apps.conversations.models import (
    Feedback,
    FeedbackKind,
    Message,
    MessageRole,
    MessageStatus,
)
from apps.knowledge.models import Document, Source

MAX_QUESTION_CHARS = 500


def customer_questions(*, tenant: Any, start: dt.datetime, end: dt.datetime) -> list[str]:
    return [
        text.strip()[:MAX_QUESTION_CHARS]
        for text in Message.objects.for_tenant(tenant)
        .filter(role=MessageRole.CUSTOMER, created_at__gte=start, created_at__lt=end)
        .exclude(content="")
        .order_by("id")
        .values_list("content", flat=True)
        if text.strip()
    ]


def top_retrieval_scores(*, tenant: Any, start: dt.datetime, end: dt.datetime) -> list[float]:
    """The best retrieval score of each assistant message (from `Message.retrieval`)."""
    scores = []
    for retrieval in (
        Message.objects.for_tenant(tenant)
        .filter(role=MessageRole.ASSISTANT, created_at__gte=start, created_at__lt=end)
        .values_list("retrieval", flat=True)
    ):
        values = [
            float(item["score"])
            for item in retrieval or []
            if isinstance(item, dict) and isinstance(item.get("score"), int | float)
        ]
        if values:
            scores.append(max(values))
    return scores


def unanswered_questions(*, tenant: Any, start: dt.datetime, end: dt.datetime) -> list[str]:
    """The customer question before each unanswered or thumbs-down answer in the window."""
    answers = Message.objects.for_tenant(tenant).filter(
        role=MessageRole.ASSISTANT,
        status__in=[MessageStatus.COMPLETE, MessageStatus.FAILED],
        created_at__gte=start,
        created_at__lt=end,
    )
    wanted: dict[int, int] = {}  # assistant message id -> conversation id
    for pk, conversation_id, status, decision, citations in answers.values_list(
        "pk", "conversation_id", "status", "decision", "citations"
    ):
        if not (status == MessageStatus.COMPLETE and decision in ANSWERED_DECISIONS and citations):
            wanted[pk] = conversation_id
    for message_id, conversation_id in (
        Feedback.objects.for_tenant(tenant)
        .filter(
            kind=FeedbackKind.THUMBS,
            rating="down",
            created_at__gte=start,
            created_at__lt=end,
            message__isnull=False,
        )
        .values_list("message_id", "conversation_id")
    ):
        wanted[message_id] = conversation_id
    if not wanted:
        return []
    by_conversation: dict[int, tuple[list[int], list[str]]] = {}
    for pk, conversation_id, content in (
        Message.objects.for_tenant(tenant)
        .filter(role=MessageRole.CUSTOMER, conversation_id__in=set(wanted.values()))
        .exclude(content="")
        .order_by("id")
        .values_list("pk", "conversation_id", "content")
    ):
        ids, texts = by_conversation.setdefault(conversation_id, ([], []))
        ids.append(pk)
        texts.append(content.strip()[:MAX_QUESTION_CHARS])
    questions = []
    for answer_id, conversation_id in sorted(wanted.items()):
        ids, texts = by_conversation.get(conversation_id, ([], []))
        position = bisect.bisect_left(ids, answer_id) - 1
        if position >= 0:
            questions.append(texts[position])
    return questions


def stale_sources(*, tenant: Any, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    cited: Counter[int] = Counter()
    for citations in (
        Message.objects.for_tenant(tenant)
        .filter(role=MessageRole.ASSISTANT, created_at__gte=start, created_at__lt=end)
        .exclude(citations=[])
        .values_list("citations", flat=True)
    ):
        for citation in citations or []:
            # The assistant stores ids as strings ("12"); older rows may hold numbers.
            document_id = citation.get("document_id") if isinstance(citation, dict) else None
            if isinstance(document_id, int) or (
                isinstance(document_id, str) and document_id.isdigit()
            ):
                cited[int(document_id)] += 1
    if not cited:
        return []
    per_source: Counter[int] = Counter()
    for document_id, source_id in (
        Document.objects.for_tenant(tenant)
        .filter(pk__in=list(cited))
        .values_list("pk", "source_id")
    ):
        per_source[source_id] += cited[document_id]
    cutoff = timezone.now() - dt.timedelta(days=settings.ANALYTICS_STALE_SOURCE_DAYS)
    stale = []
    for source in Source.objects.for_tenant(tenant).filter(pk__in=list(per_source)):
        if source.last_synced_at is None or source.last_synced_at < cutoff:
            stale.append(
                {
                    "source_id": source.pk,
                    "public_id": str(source.public_id),
                    "name": source.name,
                    "kind": source.kind,
                    "last_synced_at": (
                        source.last_synced_at.isoformat() if source.last_synced_at else None
                    ),
                    "citations": per_source[source.pk],
                }
            )
    stale.sort(key=lambda s: (-s["citations"], s["name"]))
    return stale
