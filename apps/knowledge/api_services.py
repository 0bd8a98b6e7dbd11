"""What the REST API needs on top of the knowledge services: search results with public ids."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from apps.knowledge.models import Document
from apps.knowledge.selectors import RetrievedChunk, chunk_search


@dataclass(frozen=True)
class SearchResult:
    """One ranked chunk, named by the public ids of its document and source."""

    rank: int
    score: float
    found_by: str
    text: str
    title: str
    url: str
    heading_path: list[str]
    document_id: UUID
    source_id: UUID


def knowledge_search(
    *,
    tenant: Any,
    query: str,
    limit: int,
    mode: str,
    access_groups: Iterable[str] | None = None,
) -> list[SearchResult]:
    """`chunk_search` (retrieval only, no model) with database ids swapped for public ones."""
    chunks: list[RetrievedChunk] = chunk_search(
        tenant=tenant, query=query, access_groups=access_groups, limit=limit, mode=mode
    )
    public_ids = {
        pk: (document_id, source_id)
        for pk, document_id, source_id in Document.objects.for_tenant(tenant)
        .filter(pk__in={c.document_id for c in chunks})
        .values_list("pk", "public_id", "source__public_id")
    }
    return [
        SearchResult(
            rank=c.rank,
            score=c.score,
            found_by=c.found_by,
            text=c.text,
            title=c.title,
            url=c.url,
            heading_path=list(c.heading_path),
            document_id=public_ids[c.document_id][0],
            source_id=public_ids[c.document_id][1],
        )
        for c in chunks
        if c.document_id in public_ids
    ]
