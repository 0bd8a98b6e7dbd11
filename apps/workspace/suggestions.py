"""Suggested replies: the assistant drafts a grounded answer that an agent edits and sends.

The draft is the answer engine's answer (retrieval with curated answers first, the tenant's
strategy, the groundedness guard), without streaming and without storing anything: nothing
reaches the customer until the agent sends it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from apps.assistant import answer_types, engine, prompts, retrieval
from apps.conversations.models import Conversation, Message, MessageRole
from apps.core.asyncdb import db_async

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
    return {"conversation": conversation, "question": question.content, "history": history}


def retrieve(*, conversation: Conversation, query: str) -> list[Any]:
    """What the assistant would retrieve for `query` in this conversation."""
    return retrieve_for(
        tenant=conversation.tenant, query=query, access_groups=conversation.access_groups
    )


def retrieve_for(*, tenant: Any, query: str, access_groups: list[str] | None) -> list[Any]:
    """The assistant's retrieval (the engine's one entry point): the tenant's knowledge,
    curated answers first; no sources when retrieval fails (a draft without sources is still a
    draft)."""
    try:
        return retrieval.retrieve_sources(tenant=tenant, query=query, access_groups=access_groups)
    except Exception:
        logger.exception("retrieval for a suggested reply failed")
        return []


def _public_citation(citation: dict[str, Any]) -> dict[str, Any]:
    return {k: citation.get(k) for k in ("n", "title", "url", "snippet", "document_id", "score")}


_MODES = {"extractive": "extractive", "fell_back": "extractive"}


async def draft_reply(*, conversation: Conversation) -> dict[str, Any]:
    """{content, citations, mode} — mode is llm, extractive (no model) or none (no question)."""
    context = await db_async(_context, thread_sensitive=False)(conversation)
    if context is None:
        return {"content": "", "citations": [], "mode": "none"}
    return await grounded_answer(
        tenant=context["conversation"].tenant,
        language=context["conversation"].language,
        history=context["history"],
        question=context["question"],
        access_groups=context["conversation"].access_groups,
    )


async def grounded_answer(
    *,
    tenant: Any,
    language: str,
    history: list[tuple[str, str]],
    question: str,
    access_groups: list[str] | None,
) -> dict[str, Any]:
    """The assistant's answer from the answer engine (the tenant's strategy, the guard, the
    extractive fallback), not streamed and not stored: a draft for the agent to edit."""
    result = await engine.answer(
        answer_types.Request(
            tenant=tenant,
            question=question,
            company=tenant.name,
            history=history,
            access_groups=access_groups,
            language=language,
        )
    )
    if result.outcome in {"declined", "handoff", "chitchat"} or not result.content:
        return {"content": "", "citations": [], "mode": "none", "outcome": result.outcome}
    content = result.content.removeprefix(prompts.EXTRACTIVE_INTRO).strip()
    return {
        "content": content,
        "citations": [_public_citation(c) for c in result.citations],
        "mode": _MODES.get(result.outcome, "llm"),
        "outcome": result.outcome,
        "strategy": result.strategy,
        "answerability": result.answerability,
        "model": result.model,
        "prompt_version": prompts.PROMPT_VERSION,
    }
