"""The database side of indexing one source into one index.

`SourceRows` reads the source's document and chunk rows once per run (one query each instead of
one per document); `write_batch` is the one transaction that makes a batch of planned documents
visible: new chunk rows, removed rows, document fields. The `Indexer` (pipeline.py) decides what
to plan and when to write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.knowledge.chunking import Chunk as ChunkSpec
from apps.knowledge.index_inputs import DocumentInput
from apps.knowledge.models import Chunk, Document, KnowledgeIndex, Source

# Document fields a sync writes (bulk_update needs them named; updated_at is set by hand).
DOCUMENT_FIELDS = [
    "title",
    "url",
    "content_hash",
    "access_groups",
    "status",
    "error",
    "sections",
    "fetched_at",
    "etag",
    "last_modified",
    "links",
    "version",
    "chunk_count",
    "updated_at",
]


@dataclass
class DocumentPlan:
    """What one batch write does for one document: chunks kept, new and stale, fields to set."""

    document: Document
    chunks: list[ChunkSpec]
    keep: list[tuple[Chunk, ChunkSpec]]
    new: list[ChunkSpec]
    stale: list[Chunk]
    fields: dict[str, Any]
    payload_hash: str
    changed: bool


class SourceRows:
    """The rows one source already has: its documents, and its chunks in one index."""

    def __init__(self, *, source: Source, index: KnowledgeIndex) -> None:
        self.source = source
        self.tenant = source.tenant
        self.index = index
        self._documents: dict[str, Document] | None = None
        self._chunks: dict[int, list[Chunk]] | None = None

    def document(self, item: DocumentInput) -> Document:
        """The source's row for `item.key`; new rows stay unsaved until their batch is written
        (one query for all the source's rows instead of one per document)."""
        if self._documents is None:
            self._documents = {
                d.key: d
                for d in Document.objects.for_tenant(self.tenant)
                .filter(source=self.source)
                .defer("sections")
            }
        document = self._documents.get(item.key)
        if document is None:
            document = Document(
                tenant=self.tenant,
                source=self.source,
                key=item.key,
                title=item.title[:500],
                url=item.url[:2000],
            )
            self._documents[item.key] = document
        return document

    def existing_chunks(self, document: Document) -> list[Chunk]:
        if document.pk is None:
            return []
        if self._chunks is None:
            self._chunks = {}
            for row in (
                Chunk.objects.for_tenant(self.tenant)
                .filter(source=self.source, index=self.index)
                .defer("text")
            ):
                self._chunks.setdefault(row.document_id, []).append(row)
        return self._chunks.get(document.pk, [])


def write_batch(
    *, tenant: Any, plans: list[DocumentPlan], rows: list[Chunk], reindex: bool
) -> list[str]:
    """Write a batch in one transaction; returns the point ids of the chunks it removed.

    `reindex=True` leaves document rows alone (they describe what the active index serves).
    """
    stale_ids: list[str] = []
    now = timezone.now()
    with transaction.atomic():
        created = [p.document for p in plans if p.document.pk is None]
        for document in created:
            _update_document(document, next(p for p in plans if p.document is document))
        if created:
            Document.objects.bulk_create(created, batch_size=500)
        Chunk.objects.bulk_create(rows, batch_size=500)
        moved = []
        updated: list[Document] = []
        for plan in plans:
            for row, spec in plan.keep:
                if row.position != spec.position or row.heading_path != list(spec.heading_path):
                    row.position = spec.position
                    row.heading_path = list(spec.heading_path)
                    moved.append(row)
            if plan.stale:
                stale_ids.extend(str(r.point_id) for r in plan.stale)
                Chunk.objects.for_tenant(tenant).filter(pk__in=[r.pk for r in plan.stale]).delete()
            if not reindex and plan.document not in created:
                _update_document(plan.document, plan)
                plan.document.updated_at = now
                updated.append(plan.document)
        if updated:
            Document.objects.for_tenant(tenant).bulk_update(
                updated, DOCUMENT_FIELDS, batch_size=500
            )
        if moved:
            Chunk.objects.for_tenant(tenant).bulk_update(
                moved, ["position", "heading_path"], batch_size=500
            )
    return stale_ids


def _update_document(document: Document, plan: DocumentPlan) -> None:
    for key, value in plan.fields.items():
        setattr(document, key, value)
    if plan.changed or document.version == 0:
        document.version += 1
    document.chunk_count = len(plan.chunks)
