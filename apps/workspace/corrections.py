"""Corrections: an agent marks an assistant answer wrong and writes the right one, which becomes
a curated answer (retrieved first for similar questions, visible to whom its sources are) and
an evaluation case; and the documents a correction in a conversation may cite."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from apps.conversations.models import Conversation, Message, MessageRole
from apps.core.errors import ApplicationError
from apps.knowledge.models import Document
from apps.knowledge.vectorstore.base import PUBLIC_GROUP
from apps.tenants.models import Tenant
from apps.workspace import selectors
from apps.workspace.models import CuratedAnswer, EvaluationCase
from apps.workspace.services import require_visible


def documents_visible_for(*, conversation: Conversation) -> QuerySet:
    """Documents of the conversation's tenant its customer could see (public or in their
    groups): what a correction in that conversation may be drawn from."""
    documents = Document.objects.for_tenant(conversation.tenant_id)
    groups = {PUBLIC_GROUP, *(str(g) for g in conversation.access_groups or [])}
    # Filtered here rather than with a JSON lookup, which SQLite (the demo) does not have.
    visible = [
        pk
        for pk, document_groups in documents.values_list("pk", "access_groups")
        if not document_groups or groups.intersection(str(g) for g in document_groups)
    ]
    return documents.filter(pk__in=visible)


def _sources_for(
    *, tenant: Tenant, document_ids: list[Any], conversation: Conversation | None = None
) -> list[dict[str, Any]]:
    ids = [int(d) for d in document_ids if str(d).isdigit()]
    documents = Document.objects.for_tenant(tenant)
    if conversation is not None:
        documents = documents_visible_for(conversation=conversation)
    documents = {d.pk: d for d in documents.filter(pk__in=ids)}
    if len(documents) != len(set(ids)):
        raise ApplicationError(
            "Some of the sources are not documents of this tenant that this conversation's "
            "customer may see."
        )
    return [
        {"document_id": str(pk), "title": documents[pk].title, "url": documents[pk].url or ""}
        for pk in ids
    ]


def _access_groups_of(
    *, tenant: Tenant, document_ids: list[str], curated_ids: list[str]
) -> list[list[str]]:
    """One entry per restricted document (or curated answer) drawn from: who may see it."""
    required: list[list[str]] = []

    def add(groups: Any) -> None:
        groups = sorted({str(g) for g in groups or [] if g and g != PUBLIC_GROUP})
        if groups and groups not in required:
            required.append(groups)

    numeric = [int(d) for d in document_ids if str(d).isdigit()]
    for groups in (
        Document.objects.for_tenant(tenant)
        .filter(pk__in=numeric)
        .values_list("access_groups", flat=True)
    ):
        add(groups)
    for earlier in CuratedAnswer.objects.for_tenant(tenant).filter(public_id__in=curated_ids):
        for groups in earlier.access_groups or []:
            add(groups)
    return required


def _cited_ids(message: Message | None) -> tuple[list[str], list[str]]:
    """(document ids, curated answer ids) a stored answer cited."""
    documents, curated = [], []
    for citation in (message.citations if message is not None else None) or []:
        if not isinstance(citation, dict):
            continue
        document_id = str(citation.get("document_id") or "")
        chunk_id = str(citation.get("chunk_id") or "")
        for value in (document_id, chunk_id):
            if value.startswith("curated:"):
                with contextlib.suppress(ValueError):
                    curated.append(str(uuid.UUID(value.removeprefix("curated:"))))
        if document_id.isdigit():
            documents.append(document_id)
    return documents, curated


@transaction.atomic
def curated_answer_create(
    *,
    tenant: Tenant,
    question: str,
    answer: str,
    document_ids: list[Any] = (),  # type: ignore[assignment]
    by: Any = None,
    corrected_message: Message | None = None,
) -> CuratedAnswer:
    question, answer = (question or "").strip(), (answer or "").strip()
    if not question or not answer:
        raise ApplicationError("A curated answer needs a question and an answer.")
    conversation = corrected_message.conversation if corrected_message is not None else None
    sources = _sources_for(
        tenant=tenant, document_ids=list(document_ids), conversation=conversation
    )
    cited_documents, cited_curated = _cited_ids(corrected_message)
    access_groups = _access_groups_of(
        tenant=tenant,
        document_ids=[s["document_id"] for s in sources] + cited_documents,
        curated_ids=cited_curated,
    )
    embedding, model = selectors.embed(question)
    return CuratedAnswer.objects.create(
        tenant=tenant,
        question=question,
        answer=answer,
        sources=sources,
        access_groups=access_groups,
        embedding=embedding,
        embedding_model=model,
        created_by=by,
        corrected_message=corrected_message,
    )


@transaction.atomic
def answer_correct(
    *,
    message: Message,
    agent: Any,
    answer: str,
    question: str = "",
    document_ids: list[Any] = (),  # type: ignore[assignment]
) -> tuple[CuratedAnswer, EvaluationCase]:
    """An agent marks an assistant answer wrong and writes the right one.

    Creates a curated answer (retrieved first for similar questions from now on) and an
    evaluation case (replayed by `manage.py evaluate_answers`).
    """
    conversation = message.conversation
    require_visible(user=agent, conversation=conversation)
    if message.role != MessageRole.ASSISTANT:
        raise ApplicationError("Only an assistant answer can be corrected.")
    question = (question or "").strip() or selectors.question_before(message=message)
    curated = curated_answer_create(
        tenant=conversation.tenant,
        question=question,
        answer=answer,
        document_ids=document_ids,
        by=agent,
        corrected_message=message,
    )
    case = EvaluationCase.objects.create(
        tenant=conversation.tenant,
        question=curated.question,
        expected_answer=curated.answer,
        expected_source_ids=[s["document_id"] for s in curated.sources],
        curated_answer=curated,
        created_by=agent,
    )
    return curated, case
