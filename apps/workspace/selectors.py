"""Reads for the agent workspace: inboxes and conversations an agent may work, curated answers.

Tenant scoping comes first, always; django-guardian grants (through `apps.core.permissions`)
narrow it down to the inboxes an agent holds `work_inbox` on. Owners and admins hold every
grant of their tenant.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from apps.conversations.models import Conversation, ConversationStatus, Message
from apps.conversations.selectors import answer_engine_wire
from apps.core import permissions
from apps.knowledge import runtime
from apps.tenants.models import Role, Tenant
from apps.workspace.models import WORK_INBOX, ConversationInbox, CuratedAnswer, Inbox, Priority

logger = logging.getLogger(__name__)

DEFAULT_INBOX_NAME = "General"


def inbox_default(*, tenant: Tenant) -> Inbox:
    """The tenant's default inbox (created with the tenant: `services.inbox_default_ensure`)."""
    return Inbox.objects.for_tenant(tenant).get(is_default=True)


def inboxes_visible(*, user: Any, tenant: Tenant) -> QuerySet[Inbox]:
    """Inboxes of `tenant` the user may work (every one for owners and admins)."""
    return permissions.filter_granted(
        user=user, perm=WORK_INBOX, queryset=Inbox.objects.all(), tenant=tenant
    )


def _visible_q(*, user: Any, tenant: Tenant) -> Q | None:
    """The condition on conversations of `tenant` the user may see; None when none."""
    if permissions.has_role(user=user, tenant=tenant, role=Role.ADMIN):
        return Q(tenant=tenant)
    if permissions.membership_role(user=user, tenant=tenant) is None:
        return None
    inbox_ids = list(inboxes_visible(user=user, tenant=tenant).values_list("pk", flat=True))
    if not inbox_ids:
        return None
    condition = Q(tenant=tenant, inbox_route__inbox_id__in=inbox_ids)
    if inbox_default(tenant=tenant).pk in inbox_ids:
        condition |= Q(tenant=tenant, inbox_route__isnull=True)
    return condition


def conversations_visible(*, user: Any, tenant: Tenant) -> QuerySet[Conversation]:
    """Conversations of `tenant` in inboxes the user is granted (all of them for admins)."""
    queryset = Conversation.objects.for_tenant(tenant)
    condition = _visible_q(user=user, tenant=tenant)
    return queryset.none() if condition is None else queryset.filter(condition)


def conversations_visible_in(*, user: Any, tenants: Iterable[Tenant]) -> QuerySet[Conversation]:
    """The same across several tenants (the admin changelist)."""
    tenants = list(tenants)
    condition = Q(pk__in=[])
    for tenant in tenants:
        part = _visible_q(user=user, tenant=tenant)
        if part is not None:
            condition |= part
    return Conversation.objects.for_tenants(tenants).filter(condition)


def conversation_visible_get(
    *, user: Any, tenant: Tenant, public_id: str | uuid.UUID
) -> Conversation | None:
    try:
        public_id = uuid.UUID(str(public_id))
    except (TypeError, ValueError):
        return None
    return (
        conversations_visible(user=user, tenant=tenant)
        .select_related("contact", "assigned_agent", "tenant")
        .filter(public_id=public_id)
        .first()
    )


def can_work(*, user: Any, conversation: Conversation) -> bool:
    return (
        conversations_visible(user=user, tenant=conversation.tenant)
        .filter(pk=conversation.pk)
        .exists()
    )


def conversation_inbox(*, conversation: Conversation) -> Inbox:
    try:
        route = conversation.inbox_route
    except Conversation.inbox_route.RelatedObjectDoesNotExist:
        route = None
    return route.inbox if route is not None else inbox_default(tenant=conversation.tenant)


QUEUE_STATUSES = (ConversationStatus.WAITING_FOR_HUMAN, ConversationStatus.WITH_AGENT)


def console_queue(*, user: Any, tenant: Tenant) -> QuerySet[Conversation]:
    """Waiting conversations first (oldest first), then those with an agent."""
    return (
        conversations_visible(user=user, tenant=tenant)
        .filter(status__in=QUEUE_STATUSES)
        .select_related("contact", "assigned_agent")
        .order_by("status", "updated_at")
    )


def conversation_card(conversation: Conversation) -> dict[str, Any]:
    """What the console's queue shows of a conversation."""
    agent = conversation.assigned_agent
    last = (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, role="customer")
        .order_by("-id")
        .values_list("content", flat=True)
        .first()
    )
    route = (
        ConversationInbox.objects.for_tenant(conversation.tenant_id)
        .filter(conversation_id=conversation.pk)
        .select_related("inbox")
        .first()
    )

    def when(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(conversation.public_id),
        "status": conversation.status,
        "handoff_reason": conversation.handoff_reason,
        "inbox": route.inbox.name if route else DEFAULT_INBOX_NAME,
        "priority": route.priority if route else Priority.NORMAL,
        "sla_breached": bool(route and route.sla_breached),
        "first_response_due_at": when(route.first_response_due_at) if route else None,
        "resolution_due_at": when(route.resolution_due_at) if route else None,
        "contact": str(conversation.contact) if conversation.contact_id else "Visitor",
        "agent": (agent.name if hasattr(agent, "name") else str(agent)) if agent else None,
        "agent_id": agent.pk if agent else None,
        "last_customer_message": (last or "")[:200],
        "updated_at": conversation.updated_at.isoformat() if conversation.updated_at else None,
    }


def transcript(*, conversation: Conversation) -> list[Message]:
    return list(
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation)
        .select_related("author")
        .order_by("id")
    )


def transcript_message(*, conversation: Conversation, message_id: Any) -> Message | None:
    """One message of the conversation, by its number in it as chat frames carry it (None for
    anything else)."""
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        return None
    return (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, seq=message_id)
        .select_related("author")
        .first()
    )


def message_console_wire(message: Message) -> dict[str, Any]:
    """A message for agents: the customer's view plus how an answer came about."""
    author = message.author
    return {
        # The chat protocol's id (the number within the conversation), so that the console
        # matches the frames it relays with the transcript it loaded.
        "id": message.seq,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "author": (getattr(author, "name", "") or str(author)) if author else "",
        "citations": message.citations or [],
        "decision": message.decision,
        "model": message.model,
        "prompt_version": message.prompt_version,
        "retrieval_ms": message.retrieval_ms,
        "first_token_ms": message.first_token_ms,
        "total_ms": message.total_ms,
        # Strategy, answerability and what the groundedness guard dropped (agents only).
        **answer_engine_wire(message),
    }


def question_before(*, message: Message) -> str:
    """The customer's message an assistant answer replied to."""
    return (
        Message.objects.for_tenant(message.tenant_id)
        .filter(conversation_id=message.conversation_id, id__lt=message.pk, role="customer")
        .order_by("-id")
        .values_list("content", flat=True)
        .first()
        or ""
    )


# --- Curated answers ------------------------------------------------------------------------------


def curated_min_similarity() -> float:
    return settings.WORKSPACE_CURATED_MIN_SIMILARITY


def embed(text: str) -> tuple[list[float], str]:
    """The text's dense embedding with the knowledge embedder, normalised; and the model."""
    embedder = runtime.get_embedder()
    vector = [float(x) for x in embedder.embed_query(text)]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector], str(getattr(embedder, "model_path", ""))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if not a or not b or len(a) != len(b):
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(y * y for y in b)) or 1.0
    return dot / (na * nb)


@dataclass(frozen=True, slots=True)
class CuratedSource:
    """A curated answer shaped like a retrieved chunk, so prompts and citations take it as is."""

    chunk_id: str
    document_id: str
    source_id: str
    title: str
    url: str
    text: str
    score: float
    found_by: str = "curated"
    rank: int = 1
    heading_path: list[str] = field(default_factory=list)


def curated_matches(
    *,
    tenant: Tenant,
    query: str,
    limit: int = 1,
    min_similarity: float | None = None,
    access_groups: Iterable[str] | None = None,
) -> list[tuple[CuratedAnswer, float]]:
    """Active curated answers whose question is similar to `query`, best first.

    Only answers the caller may see: `access_groups` are the caller's groups (None or empty:
    an anonymous visitor, who gets answers drawn from public documents only).
    """
    query = (query or "").strip()
    if not query:
        return []
    groups = list(access_groups or [])
    candidates = [
        answer
        for answer in CuratedAnswer.objects.for_tenant(tenant)
        .filter(is_active=True)
        .exclude(embedding=[])
        if answer.visible_to(groups)
    ]
    if not candidates:
        return []
    threshold = curated_min_similarity() if min_similarity is None else min_similarity
    vector, _ = embed(query)
    scored = [(c, cosine(vector, c.embedding)) for c in candidates]
    scored = [(c, s) for c, s in scored if s >= threshold]
    scored.sort(key=lambda pair: pair[1], reverse=True)
    return scored[:limit]


def curated_source(answer: CuratedAnswer, score: float) -> CuratedSource:
    cited = ", ".join(s.get("title", "") for s in answer.sources or [] if s.get("title"))
    text = f"Question: {answer.question}\nAnswer: {answer.answer}"
    if cited:
        text += f"\n(From: {cited})"
    first = (answer.sources or [{}])[0]
    return CuratedSource(
        chunk_id=f"curated:{answer.public_id}",
        # The first source document the agent named, so citations still point at knowledge.
        document_id=str(first.get("document_id") or f"curated:{answer.public_id}"),
        source_id="curated",
        title=first.get("title") or "Answer from our support team",
        url=first.get("url") or "",
        text=text,
        score=round(float(score), 6),
    )


def with_curated_first(
    *,
    tenant: Tenant,
    query: str,
    chunks: list[Any],
    access_groups: Iterable[str] | None = None,
) -> list[Any]:
    """`chunks` with the best matching curated answer the caller may see put first, as [1].

    `access_groups` are the caller's groups, as given to the knowledge search; without them
    only curated answers drawn from public documents are used (fail closed). Called from the
    assistant's retrieval step; a failure here never stops an answer.
    """
    try:
        matches = curated_matches(tenant=tenant, query=query, limit=1, access_groups=access_groups)
    except Exception:  # the knowledge answers must go on without the curated ones
        logger.exception("curated answer lookup failed for tenant %s", tenant.pk)
        return chunks
    if not matches:
        return chunks
    answer, score = matches[0]
    return [curated_source(answer, score), *chunks]
