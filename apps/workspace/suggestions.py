"""Suggested replies: the assistant drafts a grounded answer that an agent edits and sends.

The draft reuses the assistant's own pieces (retrieval with curated answers first, the
versioned answer prompt, the LLM client, citation extraction), without streaming and without
storing anything: nothing reaches the customer until the agent sends it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from apps.assistant import llm, prompts
from apps.assistant import services as assistant
from apps.conversations.models import Conversation, Message, MessageRole
from apps.core.asyncdb import db_async
from apps.workspace import selectors

logger = logging.getLogger(__name__)


def _context(conversation: Conversation) -> dict[str, Any] | None:
    conversation = (
        Conversation.objects.for_tenant(conversation.tenant_id)
        .select_related("tenant")
        .get(pk=conversation.pk)
    )
    messages = list(
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation)
        .filter(role__in=[MessageRole.CUSTOMER, MessageRole.ASSISTANT, MessageRole.AGENT])
        .exclude(content="")
        .order_by("-id")[: settings.ASSISTANT_HISTORY_TURNS + 1]
    )[::-1]
    customer = [m for m in messages if m.role == MessageRole.CUSTOMER]
    if not customer:
        return None
    question = customer[-1]
    history = [(m.role, m.content) for m in messages if m.pk < question.pk]
    chunks = retrieve(conversation=conversation, query=question.content)
    return {
        "conversation": conversation,
        "question": question.content,
        "history": history,
        "chunks": chunks,
    }


def retrieve(*, conversation: Conversation, query: str) -> list[Any]:
    """What the assistant would retrieve for `query` in this conversation."""
    return retrieve_for(
        tenant=conversation.tenant, query=query, access_groups=conversation.access_groups
    )


def retrieve_for(*, tenant: Any, query: str, access_groups: list[str] | None) -> list[Any]:
    """The assistant's retrieval: the tenant's knowledge, curated answers first."""
    from apps.knowledge.selectors import chunk_search

    try:
        chunks = chunk_search(
            tenant=tenant,
            query=query,
            access_groups=access_groups,
            limit=settings.ASSISTANT_RETRIEVAL_LIMIT,
            mode="hybrid",
        )
    except Exception:  # a draft without sources is still a draft
        logger.exception("retrieval for a suggested reply failed")
        chunks = []
    return selectors.with_curated_first(tenant=tenant, query=query, chunks=chunks)


def _public_citation(citation: dict[str, Any]) -> dict[str, Any]:
    return {k: citation.get(k) for k in ("n", "title", "url", "snippet", "document_id", "score")}


async def draft_reply(*, conversation: Conversation) -> dict[str, Any]:
    """{content, citations, mode} — mode is llm, extractive (no model) or none (no question)."""
    context = await db_async(_context, thread_sensitive=False)(conversation)
    if context is None:
        return {"content": "", "citations": [], "mode": "none"}
    return await grounded_answer(
        company=context["conversation"].tenant.name,
        language=context["conversation"].language,
        history=context["history"],
        question=context["question"],
        chunks=context["chunks"],
    )


async def grounded_answer(
    *,
    company: str,
    language: str,
    history: list[tuple[str, str]],
    question: str,
    chunks: list[Any],
) -> dict[str, Any]:
    """The assistant's answer prompt and model, in one non-streamed call; excerpts without it."""
    if not chunks:
        return {"content": "", "citations": [], "mode": "none"}
    if settings.ASSISTANT_MODE == "llm":
        messages = prompts.build_answer_messages(
            company=company, language=language, history=history, question=question, sources=chunks
        )
        try:
            text = await llm.chat_complete(
                messages,
                max_tokens=settings.LLM_MAX_TOKENS,
                temperature=0.2,
                timeout=settings.ASSISTANT_ANSWER_TIMEOUT,
            )
        except llm.LLM_ERRORS as exc:
            logger.info("grounded answer: the model failed (%s); excerpts", type(exc).__name__)
        else:
            if text and not prompts.LeakDetector(messages[0]["content"]).leaks(text):
                cites = assistant.citations_for(text, chunks)
                return {
                    "content": text,
                    "citations": [_public_citation(c) for c in cites],
                    "mode": "llm",
                    "model": settings.LLM_MODEL,
                    "prompt_version": prompts.PROMPT_VERSION,
                }
    content, cites = assistant.extractive_content(chunks)
    # The intro speaks to a customer ("our assistant is unavailable"); the agent writes their own.
    content = content.removeprefix(prompts.EXTRACTIVE_INTRO).strip()
    return {
        "content": content,
        "citations": [_public_citation(c) for c in cites],
        "mode": "extractive",
    }
