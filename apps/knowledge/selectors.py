"""Reads for knowledge: retrieval for the assistant, listings for the admin and the API."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import QuerySet

from apps.core.errors import TenantScopeError
from apps.knowledge import runtime
from apps.knowledge.index_lifecycle import serving_index
from apps.knowledge.models import Chunk, Document, KnowledgeIndex, Source
from apps.knowledge.rerank import (
    QueryParts,
    RerankQuery,
    RerankWeights,
    mix_query_vectors,
    split_query,
    weighted_query_terms,
)
from apps.knowledge.rerank import rerank as rerank_hits
from apps.knowledge.vectorstore.base import (
    SEARCH_MODES,
    CollectionNotFoundError,
    SearchHit,
    SearchScope,
    SparseVector,
)
from apps.knowledge.vectorstore.fusion import HybridFusion
from apps.knowledge.vectorstore.interface import VectorStore

logger = logging.getLogger(__name__)

# Extra candidates asked of the store, so points without a row (a sync that died between its
# two writes) can be dropped without returning fewer results than asked for.
OVERFETCH = 4

# The rerank's blend, chosen on every evaluation set together (docs/retrieval.md).
RERANK_WEIGHTS = RerankWeights()


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    """One retrieved chunk, best first. Ids are database primary keys of the knowledge rows.

    `found_by` is "dense", "sparse" or "both" (which retrievers returned it); `rank` starts at 1.
    """

    chunk_id: int
    document_id: int
    source_id: int
    title: str
    url: str
    heading_path: list[str]
    text: str
    score: float
    found_by: str
    rank: int


def search_scope(*, tenant: Any, access_groups: Iterable[str] | None) -> SearchScope:
    """`access_groups=None` is an anonymous customer: public documents only."""
    if tenant is None:
        raise TenantScopeError("chunk_search needs a tenant")
    groups = frozenset(str(g) for g in access_groups) if access_groups is not None else frozenset()
    return SearchScope(tenant_id=str(tenant.public_id), access_groups=groups)


@dataclass(frozen=True, slots=True)
class ShapedQuery:
    """What the retrievers and the rerank search with (see :func:`shape_query`)."""

    parts: QueryParts
    dense: np.ndarray | None
    sparse: SparseVector | None
    question_vector: np.ndarray | None


def shape_query(*, query: str, mode: str, index: KnowledgeIndex) -> ShapedQuery:
    """Query vectors with the question sentence weighed above the scenario around it.

    Dense: the message's vector plus `KNOWLEDGE_QUERY_QUESTION_WEIGHT` x the question
    sentence's, normalised. Sparse: every term weighs 1, except terms only the scenario has
    (`KNOWLEDGE_QUERY_CONTEXT_WEIGHT`). A one-sentence message is searched as it is.
    """
    parts = split_query(query)
    dense = sparse = question_vector = None
    if mode in ("hybrid", "dense"):
        embedder = runtime.get_embedder(index.embedding_model_path or None)
        dense = embedder.embed_query(query)
        question_vector = dense
        if parts.context:
            question_vector = embedder.embed_query(parts.question)
            dense = mix_query_vectors(
                dense, question_vector, settings.KNOWLEDGE_QUERY_QUESTION_WEIGHT
            )
    if mode in ("hybrid", "sparse"):
        encoder = runtime.sparse_encoder_for(index.chunking)
        if parts.context:
            sparse = encoder.encode_weighted_query(
                weighted_query_terms(
                    parts, encoder.tokenize, settings.KNOWLEDGE_QUERY_CONTEXT_WEIGHT
                )
            )
        else:
            sparse = encoder.encode_query(query)
    return ShapedQuery(parts=parts, dense=dense, sparse=sparse, question_vector=question_vector)


def raw_search(
    *,
    scope: SearchScope,
    query: str,
    mode: str,
    limit: int,
    store: VectorStore | None = None,
    index: KnowledgeIndex | None = None,
    rerank: bool | None = None,
) -> list[SearchHit]:
    """Points for `query` from the serving collection, scoped. Used by chunk_search and tools.

    Hybrid runs the dense and the sparse retriever (each `KNOWLEDGE_SEARCH_PREFETCH` deep,
    one engine call through the store's scope filter) and fuses them with the configured
    fusion (docs/retrieval.md): "convex" = weighted sum of min-max normalised scores, "rrf" =
    weighted reciprocal-rank fusion. With `rerank` (default `KNOWLEDGE_RERANK`) the best
    `KNOWLEDGE_RERANK_DEPTH` fused candidates are re-scored (`apps.knowledge.rerank`); the
    rerank only reorders what the scoped search returned.
    """
    store = store or runtime.get_store()
    index = index or serving_index(store)
    if index is None:
        return []
    if rerank is None:
        rerank = settings.KNOWLEDGE_RERANK
    rerank = rerank and mode == "hybrid"
    shaped = shape_query(query=query, mode=mode, index=index)
    fusion = HybridFusion(
        method=settings.KNOWLEDGE_HYBRID_FUSION,
        dense_weight=settings.KNOWLEDGE_HYBRID_DENSE_WEIGHT,
        rrf_k=settings.KNOWLEDGE_RRF_K,
        adaptive=settings.KNOWLEDGE_HYBRID_ADAPTIVE,
    )
    depth = max(limit, settings.KNOWLEDGE_RERANK_DEPTH) if rerank else limit
    try:
        with runtime.store_session() as session:
            hits = session.search(
                index.collection,
                scope=scope,
                dense=shaped.dense,
                sparse=shaped.sparse,
                mode=mode,  # type: ignore[arg-type]
                limit=depth,
                prefetch_limit=max(settings.KNOWLEDGE_SEARCH_PREFETCH, depth),
                fusion=fusion,
            )
    except CollectionNotFoundError:
        logger.warning("collection %s is missing; nothing to search", index.collection)
        return []
    if not rerank:
        return hits
    return rerank_hits(
        hits,
        query=RerankQuery(parts=shaped.parts, vector=shaped.question_vector),
        weights=RERANK_WEIGHTS,
        limit=limit,
    )


def chunk_search(
    *,
    tenant: Any,
    query: str,
    access_groups: Iterable[str] | None = None,
    limit: int = 6,
    mode: str = "hybrid",
    rerank: bool | None = None,
) -> list[RetrievedChunk]:
    """The tenant's chunks that best answer `query`, best first.

    Always filtered to `tenant` and to what `access_groups` may see (public documents plus
    those shared with one of the groups; `None` means an anonymous customer: public only).
    `mode` is "hybrid" (dense + sparse, fused as configured, then reranked unless `rerank`
    is False or `KNOWLEDGE_RERANK` is off), "dense" or "sparse".
    """
    scope = search_scope(tenant=tenant, access_groups=access_groups)
    if mode not in SEARCH_MODES:
        raise ValueError(f"mode must be one of {', '.join(SEARCH_MODES)}")
    query = (query or "").strip()
    if not query or limit < 1:
        return []
    hits = raw_search(scope=scope, query=query, mode=mode, limit=limit + OVERFETCH, rerank=rerank)
    return hits_to_chunks(tenant=tenant, hits=hits, limit=limit, mode=mode)


def hits_to_chunks(
    *, tenant: Any, hits: list[SearchHit], limit: int, mode: str
) -> list[RetrievedChunk]:
    """Map points to their rows (dropping points without one) and number them."""
    if not hits:
        return []
    rows = {
        str(row.point_id): row
        for row in Chunk.objects.for_tenant(tenant)
        .filter(point_id__in=[hit.id for hit in hits])
        .select_related("document")
    }
    results: list[RetrievedChunk] = []
    for hit in hits:
        row = rows.get(hit.id)
        if row is None:
            continue
        found = hit.found_by or {mode}
        results.append(
            RetrievedChunk(
                chunk_id=row.pk,
                document_id=row.document_id,
                source_id=row.source_id,
                title=row.document.title,
                url=row.document.url,
                heading_path=list(row.heading_path),
                text=row.text,
                score=float(hit.score),
                found_by="both" if len(found) > 1 else next(iter(found)),
                rank=len(results) + 1,
            )
        )
        if len(results) >= limit:
            break
    return results


# --------------------------------------------------------------------------- listings


def source_list(*, tenant: Any) -> QuerySet[Source]:
    return Source.objects.for_tenant(tenant).order_by("name")


def source_get(*, tenant: Any, public_id: Any) -> Source:
    return Source.objects.for_tenant(tenant).get(public_id=public_id)


def document_list(*, tenant: Any, source: Source | None = None) -> QuerySet[Document]:
    documents = Document.objects.for_tenant(tenant)
    return documents.filter(source=source) if source is not None else documents


def progress_snapshot(*, tenants: Iterable[Any], include_indexes: bool) -> dict[str, Any]:
    """What the admin's progress bars show, for the JSON polling fallback."""
    sources = [
        {
            "source": str(s.public_id),
            "tenant": s.tenant_id,
            "name": s.name,
            "status": s.status,
            "documents_done": s.progress_done,
            "documents_total": s.progress_total,
            "documents": s.document_count,
            "chunks": s.chunk_count,
            "error": s.error,
        }
        for s in Source.objects.for_tenants(list(tenants)).order_by("name")
    ]
    data: dict[str, Any] = {"sources": sources}
    if include_indexes:
        data["indexes"] = [
            {
                "index": str(i.public_id),
                "collection": i.collection,
                "status": i.status,
                "percent": i.percent,
                "documents_done": i.documents_done,
                "documents_total": i.documents_total,
                "chunks_done": i.chunks_done,
                "chunks_total": i.chunks_total,
                "error": i.error,
            }
            for i in KnowledgeIndex.objects.order_by("-created_at")[:10]
        ]
    return data
