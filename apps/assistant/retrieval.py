"""Retrieval for the answer engine, the one entry point: the tenant's knowledge for a query
(tenant and access filters always applied) with what ranks above it (curated answers), the
query encoder, and the evidence gathered from what was found."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from django.conf import settings

from apps.assistant import evidence as evidence_mod
from apps.assistant.answer_types import Request
from apps.assistant.evidence import Evidence
from apps.core.asyncdb import db_async
from apps.knowledge import runtime
from apps.knowledge.selectors import chunk_search

logger = logging.getLogger(__name__)


# What goes above the knowledge chunks: the workspace's curated answers. The workspace (a layer
# above) registers it from its AppConfig.ready(), so the assistant does not import it.
SourcesRanker = Callable[..., list[Any]]
_sources_rankers: list[SourcesRanker] = []


def sources_ranker_register(ranker: SourcesRanker) -> SourcesRanker:
    """Add `ranker(tenant=, query=, chunks=, access_groups=) -> chunks` (once)."""
    if ranker not in _sources_rankers:
        _sources_rankers.append(ranker)
    return ranker


def retrieve_sources(*, tenant: Any, query: str, access_groups: list[str] | None) -> list[Any]:
    """The tenant's knowledge for `query` (tenant and access filters always applied), with the
    best matching curated answer first. Shared by the chat and reply suggestions."""
    chunks = chunk_search(
        tenant=tenant,
        query=query,
        access_groups=access_groups,
        limit=settings.ASSISTANT_RETRIEVAL_LIMIT,
        mode="hybrid",
    )
    for ranker in _sources_rankers:
        chunks = ranker(tenant=tenant, query=query, chunks=chunks, access_groups=access_groups)
    return chunks


def _retrieve(request: Request, query: str) -> list[Any]:
    try:
        return retrieve_sources(
            tenant=request.tenant, query=query, access_groups=request.access_groups
        )
    except Exception:  # no sources is handled by the caller; the chat must go on
        logger.exception("retrieval failed for tenant %s", getattr(request.tenant, "pk", None))
        return []


def embedder() -> Any:
    return runtime.get_embedder()


def encode(texts: Sequence[str]) -> np.ndarray:
    """Unit vectors for short texts with the query encoder (ONNX by default)."""
    return embedder().encoder.encode(list(texts), batch_size=32)


def _gather(question: str, query: str, chunks: list[Any]) -> Evidence:
    vector = embedder().embed_query(query)
    return evidence_mod.gather(question=question, chunks=chunks, query_vector=vector, encode=encode)


retrieve = db_async(_retrieve, thread_sensitive=False)
gather = db_async(_gather, thread_sensitive=False)


def embed_ahead(query: str) -> None:
    """Start embedding `query` (the embedder remembers it for retrieval and evidence)."""
    try:
        embedder().embed_query(query)
    except Exception:  # retrieval embeds again and reports the failure
        logger.debug("embedding ahead failed", exc_info=True)
