"""Nightly batch inference: a summary and topic tags for every resolved conversation.

Conversations are claimed before the model is asked: a new one by inserting its
`ConversationInsight` (unique per conversation: a second run at the same time gets an
IntegrityError and skips it), a known one by a conditional update. Nothing holds a database
lock while the model thinks. A conversation resolved again after its summary is summarised
again; a failure is retried on later nights up to INSIGHTS_MAX_ATTEMPTS.

The model is asked through `apps.core.llm.chat_structured` (JSON-schema-constrained output;
it speaks both vLLM's `json_schema` and llama-cpp-python's `json_object`+schema), several
conversations at once (INSIGHTS_CONCURRENCY), which vLLM batches on the GPU.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, When
from django.utils import timezone

from apps.analytics.models import ConversationInsight, InsightStatus
from apps.conversations.models import Conversation, ConversationStatus, Message, MessageRole
from apps.core import llm
from apps.core.observability import metrics

logger = logging.getLogger(__name__)

# A claim older than this belongs to a run that died; another run may take it over.
CLAIM_TIMEOUT = dt.timedelta(minutes=30)
TRANSCRIPT_MAX_CHARS = 6000
MESSAGE_MAX_CHARS = 800
SUMMARY_MAX_CHARS = 1000
MAX_TOPICS = 5
TOPIC_MAX_CHARS = 40
MAX_TOKENS = 200

INSIGHT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "maxLength": SUMMARY_MAX_CHARS},
        "topics": {
            "type": "array",
            "items": {"type": "string", "maxLength": TOPIC_MAX_CHARS},
            "minItems": 1,
            "maxItems": MAX_TOPICS,
        },
    },
    "required": ["summary", "topics"],
    "additionalProperties": False,
}
SYSTEM_PROMPT = (
    "You summarise customer-support conversations for the support team. Answer with JSON: "
    '"summary" is one or two sentences saying what the customer needed and how it ended; '
    '"topics" is one to five short lowercase topic tags (e.g. "billing", "password reset").'
)
_ROLE_NAMES = {
    MessageRole.CUSTOMER: "Customer",
    MessageRole.ASSISTANT: "Assistant",
    MessageRole.AGENT: "Agent",
}


@dataclass
class Job:
    insight_id: int
    conversation_id: int
    transcript: str
    summary: str = ""
    topics: list[str] | None = None
    error: str = ""


def _needs_work(cutoff: dt.datetime) -> Q:
    """Insight rows that are due again (as a filter on ConversationInsight)."""
    return Q(status=InsightStatus.FAILED, attempts__lt=settings.INSIGHTS_MAX_ATTEMPTS) | Q(
        status=InsightStatus.PROCESSING, claimed_at__lt=cutoff
    )


def candidates(*, tenant: Any, limit: int, exclude: Iterable[int] = ()) -> list[Conversation]:
    """Resolved conversations of the tenant without a current summary, oldest first."""
    cutoff = timezone.now() - CLAIM_TIMEOUT
    insights = ConversationInsight.objects.for_tenant(tenant).filter(conversation=OuterRef("pk"))
    return list(
        Conversation.objects.for_tenant(tenant)
        .filter(status=ConversationStatus.RESOLVED, resolved_at__isnull=False)
        .filter(
            ~Exists(insights)
            | Exists(insights.filter(_needs_work(cutoff)))
            # Resolved again since it was summarised (reopened by the customer, then closed).
            | Exists(insights.exclude(resolved_at=OuterRef("resolved_at")))
        )
        .exclude(pk__in=list(exclude))
        .order_by("resolved_at", "pk")[:limit]
    )


def _claim(*, tenant: Any, conversation: Conversation) -> ConversationInsight | None:
    """Take the conversation for this run, or None if another run has it or it is done."""
    now = timezone.now()
    try:
        with transaction.atomic():
            return ConversationInsight.objects.create(
                tenant=tenant,
                conversation=conversation,
                resolved_at=conversation.resolved_at,
                status=InsightStatus.PROCESSING,
                claimed_at=now,
            )
    except IntegrityError:
        pass
    cutoff = now - CLAIM_TIMEOUT
    claimed = (
        ConversationInsight.objects.for_tenant(tenant)
        .filter(conversation=conversation)
        .filter(_needs_work(cutoff) | ~Q(resolved_at=conversation.resolved_at))
        .exclude(status=InsightStatus.PROCESSING, claimed_at__gte=cutoff)
        .update(
            status=InsightStatus.PROCESSING,
            claimed_at=now,
            # A new resolution starts its attempts afresh.
            attempts=Case(
                When(resolved_at=conversation.resolved_at, then=F("attempts")), default=0
            ),
            resolved_at=conversation.resolved_at,
        )
    )
    if not claimed:
        return None
    return ConversationInsight.objects.for_tenant(tenant).get(conversation=conversation)


def transcript(conversation: Conversation) -> str:
    lines = []
    for role, content in (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, role__in=list(_ROLE_NAMES))
        .exclude(content="")
        .order_by("id")
        .values_list("role", "content")
    ):
        text = " ".join(content.split())[:MESSAGE_MAX_CHARS]
        lines.append(f"{_ROLE_NAMES[role]}: {text}")
    text = "\n".join(lines)
    # Keep the end: how a conversation ended matters more than how it began.
    return text[-TRANSCRIPT_MAX_CHARS:]


def clean_result(value: dict[str, Any]) -> tuple[str, list[str]]:
    """Validate the model's JSON; raises ValueError when it is not usable."""
    summary = value.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError("the model gave no summary")
    topics_raw = value.get("topics")
    if not isinstance(topics_raw, list):
        raise ValueError("the model gave no topic list")
    topics: list[str] = []
    for topic in topics_raw:
        if not isinstance(topic, str):
            continue
        tag = " ".join(topic.lower().split())[:TOPIC_MAX_CHARS].strip(" .,;:")
        if tag and tag not in topics:
            topics.append(tag)
        if len(topics) >= MAX_TOPICS:
            break
    return " ".join(summary.split())[:SUMMARY_MAX_CHARS], topics


async def _ask_all(jobs: list[Job]) -> None:
    semaphore = asyncio.Semaphore(settings.INSIGHTS_CONCURRENCY)

    async def ask(job: Job) -> None:
        async with semaphore:
            try:
                value = await llm.chat_structured(
                    [
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": f"Conversation:\n{job.transcript}"},
                    ],
                    name="conversation_insight",
                    schema=INSIGHT_SCHEMA,
                    max_tokens=MAX_TOKENS,
                    timeout=settings.INSIGHTS_TIMEOUT,
                )
                job.summary, job.topics = clean_result(value)
            except (*llm.LLM_ERRORS, ValueError) as exc:
                metrics.llm_error_from_exception(exc)
                job.error = f"{type(exc).__name__}: {exc}"[:1000]

    await asyncio.gather(*(ask(job) for job in jobs))


def _save(*, tenant: Any, job: Job) -> bool:
    now = timezone.now()
    insights = ConversationInsight.objects.for_tenant(tenant).filter(pk=job.insight_id)
    if job.error:
        insights.update(
            status=InsightStatus.FAILED,
            error=job.error,
            attempts=F("attempts") + 1,
            claimed_at=None,
        )
        logger.warning("summary of conversation %s failed: %s", job.conversation_id, job.error)
        return False
    with transaction.atomic():
        insights.update(
            status=InsightStatus.DONE,
            summary=job.summary,
            topics=job.topics or [],
            model=settings.LLM_MODEL,
            error="",
            attempts=F("attempts") + 1,
            claimed_at=None,
            summarized_at=now,
        )
        # The conversation carries the latest summary too (its fields are there for this job).
        Conversation.objects.for_tenant(tenant).filter(pk=job.conversation_id).update(
            summary=job.summary, topics=job.topics or []
        )
    return True


def insights_generate(*, tenant: Any, limit: int | None = None) -> int:
    """Summarise the tenant's resolved conversations that need it; returns how many succeeded."""
    if tenant is None:
        raise ValueError("insights_generate needs a tenant")
    limit = limit or settings.INSIGHTS_MAX_PER_RUN
    tried: set[int] = set()
    done = 0
    while len(tried) < limit:
        batch = candidates(
            tenant=tenant,
            limit=min(settings.INSIGHTS_BATCH_SIZE, limit - len(tried)),
            exclude=tried,
        )
        if not batch:
            break
        jobs = []
        for conversation in batch:
            tried.add(conversation.pk)
            insight = _claim(tenant=tenant, conversation=conversation)
            if insight is not None:
                jobs.append(
                    Job(
                        insight_id=insight.pk,
                        conversation_id=conversation.pk,
                        transcript=transcript(conversation),
                    )
                )
        if not jobs:
            continue
        async_to_sync(_ask_all)(jobs)
        done += sum(_save(tenant=tenant, job=job) for job in jobs)
    if tried:
        logger.info("summarised %d of %d conversation(s) of tenant %s", done, len(tried), tenant.pk)
    return done


# --- Export ---------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "conversation_id",
    "resolved_at",
    "summarized_at",
    "status",
    "topics",
    "summary",
    "channel",
    "handoff_reason",
)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start like a formula; quote them (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def insights_csv(insights: Iterable[ConversationInsight]) -> str:
    """CSV text of the given insights (the caller scopes them to a tenant)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for insight in insights:
        conversation = insight.conversation
        writer.writerow(
            [
                _cell(conversation.public_id),
                _cell(insight.resolved_at.isoformat() if insight.resolved_at else ""),
                _cell(insight.summarized_at.isoformat() if insight.summarized_at else ""),
                _cell(insight.status),
                _cell("; ".join(insight.topics or [])),
                _cell(insight.summary),
                _cell(conversation.channel),
                _cell(conversation.handoff_reason),
            ]
        )
    return buffer.getvalue()
