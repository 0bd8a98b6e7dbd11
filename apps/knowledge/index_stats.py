"""Counts of indexing work: `SyncStats` for one sync or build (progress events, the
`source.synced` payload), and `source_recount`, which brings a source's document and chunk
counters back in line with its rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.knowledge.models import Document, Source


@dataclass
class SyncStats:
    documents_seen: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    documents_failed: int = 0
    chunks_embedded: int = 0
    chunks_kept: int = 0
    chunks_deleted: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


def source_recount(*, source: Source) -> None:
    documents = Document.objects.for_tenant(source.tenant).filter(source=source)
    source.document_count = documents.filter(status=Document.Status.OK).count()
    source.failed_document_count = documents.filter(status=Document.Status.FAILED).count()
    source.chunk_count = sum(documents.values_list("chunk_count", flat=True))
    Source.objects.for_tenant(source.tenant).filter(pk=source.pk).update(
        document_count=source.document_count,
        failed_document_count=source.failed_document_count,
        chunk_count=source.chunk_count,
    )
