"""Syncing a knowledge source: claim it, feed its documents (text, upload, page, crawled site)
to the `Indexer`, remove what the source no longer lists, record the outcome with its event and
progress; and the schedule (`sources_due`, `source_mark_queued`) that beat uses to queue syncs.

Creating, changing and deleting sources are in `services`.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core import realtime
from apps.core.errors import ApplicationError
from apps.events.models import EventType
from apps.events.services import event_record
from apps.knowledge import crawl
from apps.knowledge.index_inputs import DocumentInput
from apps.knowledge.index_lifecycle import active_index, delete_document_points
from apps.knowledge.index_stats import SyncStats, source_recount
from apps.knowledge.models import Document, Source
from apps.knowledge.pipeline import Indexer

logger = logging.getLogger(__name__)

# A sync that has said nothing for this long is taken to have died with its worker.
SYNC_STALE_AFTER = timedelta(minutes=30)


def _claim(source: Source) -> Source | None:
    """Mark the source syncing, unless a live sync holds it."""
    now = timezone.now()
    with transaction.atomic():
        source = Source.objects.for_tenant(source.tenant_id).select_for_update().get(pk=source.pk)
        if (
            source.status == Source.Status.SYNCING
            and source.last_attempt_at
            and now - source.last_attempt_at < SYNC_STALE_AFTER
        ):
            return None
        source.status = Source.Status.SYNCING
        source.last_attempt_at = now
        source.progress_done = 0
        source.progress_total = 0
        source.save(
            update_fields=[
                "status",
                "last_attempt_at",
                "progress_done",
                "progress_total",
                "updated_at",
            ]
        )
    _progress(source, {})
    return source


def _progress(source: Source, stats: dict[str, Any]) -> None:
    realtime.send_source_progress(
        tenant_id=source.tenant_id,
        source_id=source.public_id,
        status=source.status,
        progress={
            "documents_done": source.progress_done,
            "documents_total": source.progress_total,
            **stats,
        },
    )


class SourceSync:
    """One sync run of one source: feeds the Indexer from the source's kind."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.indexer = Indexer(source=source, index=active_index(), on_flush=self._flushed)
        self.complete = True  # False when the listing was cut short, so nothing is removed

    def run(self) -> SyncStats:
        kind = self.source.kind
        if kind == Source.Kind.TEXT:
            self._add(
                DocumentInput(
                    key="text",
                    filename="text.md",
                    data=self.source.text.encode("utf-8"),
                    title=self.source.name,
                    url=self.source.url,
                )
            )
        elif kind == Source.Kind.UPLOAD:
            self._upload()
        elif kind == Source.Kind.URL:
            self._pages(crawl.Crawler.from_settings().fetch_single(self.source.url, self._known()))
        elif kind == Source.Kind.SITEMAP:
            crawler = crawl.Crawler.from_settings()
            self._pages(
                crawler.crawl(
                    self.source.url,
                    known=self._known(),
                    max_pages=self.source.max_pages,
                    max_depth=self.source.max_depth,
                )
            )
            self.complete = crawler.complete
        stats = self.indexer.finish()
        if self.complete:
            self._remove_unseen()
        return stats

    def _add(self, item: DocumentInput) -> None:
        self.indexer.add(item)
        self._tick()

    def _tick(self) -> None:
        source = self.source
        source.progress_done = self.indexer.stats.documents_seen
        source.progress_total = max(source.progress_total, source.progress_done)
        Source.objects.for_tenant(source.tenant).filter(pk=source.pk).update(
            progress_done=source.progress_done, progress_total=source.progress_total
        )
        _progress(source, self.indexer.stats.as_dict())

    def _flushed(self, stats: SyncStats) -> None:
        _progress(self.source, stats.as_dict())

    def _upload(self) -> None:
        if not self.source.upload:
            raise ApplicationError("The source has no file.")
        with self.source.upload.open("rb") as fh:
            data = fh.read(settings.KNOWLEDGE_UPLOAD_MAX_BYTES + 1)
        name = posixpath.basename(self.source.upload.name)
        self._add(DocumentInput(key="upload", filename=name, data=data, title=""))

    def _known(self) -> dict[str, crawl.KnownPage]:
        return {
            d.key: crawl.KnownPage(etag=d.etag, last_modified=d.last_modified, links=d.links)
            for d in Document.objects.for_tenant(self.source.tenant)
            .filter(source=self.source, status=Document.Status.OK)
            .only("key", "etag", "last_modified", "links")
        }

    def _pages(self, pages: Iterable[crawl.Page]) -> None:
        for page in pages:
            self.source.progress_total = max(self.source.progress_total, page.discovered)
            if page.status == crawl.PageStatus.NOT_MODIFIED:
                self.indexer.keep_unchanged(page.url)
                self._tick()
            elif page.status == crawl.PageStatus.OK:
                self._add(
                    DocumentInput(
                        key=page.url,
                        filename=page.filename,
                        data=page.data,
                        content_type=page.content_type,
                        url=page.url,
                        etag=page.etag,
                        last_modified=page.last_modified,
                        links=page.links,
                    )
                )
            elif page.status == crawl.PageStatus.GONE:
                pass  # not marked seen: removed below with the pages no longer listed
            else:
                self.indexer.fail(
                    DocumentInput(key=page.url, url=page.url), page.error or "fetch failed"
                )
                self._tick()

    def _remove_unseen(self) -> None:
        tenant = self.source.tenant
        gone = list(
            Document.objects.for_tenant(tenant)
            .filter(source=self.source)
            .exclude(key__in=self.indexer.seen_keys)
        )
        for document in gone:
            delete_document_points(document=document)
        if gone:
            Document.objects.for_tenant(tenant).filter(pk__in=[d.pk for d in gone]).delete()
        self.indexer.stats.chunks_deleted += sum(d.chunk_count for d in gone)


def source_sync(*, source: Source) -> SyncStats | None:
    """Fetch, parse, chunk, embed and store what changed; None when a sync already runs.

    Transient fetch errors (`crawl.TransientFetchError`) are recorded and re-raised so the
    task can retry; every other failure is recorded on the source and not raised.
    """
    claimed = _claim(source)
    if claimed is None:
        return None
    run = SourceSync(claimed)
    try:
        stats = run.run()
    except crawl.TransientFetchError as exc:
        _finish_failed(claimed, str(exc), run.indexer.stats)
        raise
    except (ApplicationError, crawl.FetchError) as exc:
        _finish_failed(claimed, getattr(exc, "message", None) or str(exc), run.indexer.stats)
        return run.indexer.stats
    except Exception as exc:
        logger.exception("sync of source %s failed", claimed.pk)
        _finish_failed(claimed, f"Internal error: {type(exc).__name__}", run.indexer.stats)
        raise
    _finish(claimed, stats)
    return stats


def _finish(source: Source, stats: SyncStats) -> None:
    source_recount(source=source)
    single = source.kind in (Source.Kind.TEXT, Source.Kind.UPLOAD, Source.Kind.URL)
    failed = stats.documents_failed and (single or stats.documents_failed == stats.documents_seen)
    if failed:
        _finish_failed(source, "; ".join(stats.errors[:3]), stats)
        return
    error = ""
    if stats.documents_failed:
        error = f"{stats.documents_failed} of {stats.documents_seen} documents failed: " + (
            "; ".join(stats.errors[:3])
        )
    now = timezone.now()
    with transaction.atomic():
        Source.objects.for_tenant(source.tenant).filter(pk=source.pk).update(
            status=Source.Status.SYNCED,
            last_synced_at=now,
            error=error,
            updated_at=now,
            **_validators(source),
        )
        source.status = Source.Status.SYNCED
        event_record(
            tenant=source.tenant,
            type=EventType.SOURCE_SYNCED,
            payload={
                "source_id": str(source.public_id),
                "name": source.name,
                "documents": source.document_count,
                "chunks": source.chunk_count,
                **stats.as_dict(),
            },
        )
    _progress(source, stats.as_dict())


def _validators(source: Source) -> dict[str, str]:
    if source.kind != Source.Kind.URL:
        return {}
    document = Document.objects.for_tenant(source.tenant).filter(source=source).first()
    if document is None:
        return {}
    return {"etag": document.etag, "last_modified": document.last_modified}


def _finish_failed(source: Source, error: str, stats: SyncStats) -> None:
    source_recount(source=source)
    now = timezone.now()
    with transaction.atomic():
        Source.objects.for_tenant(source.tenant).filter(pk=source.pk).update(
            status=Source.Status.FAILED, error=error[:5000], updated_at=now
        )
        source.status = Source.Status.FAILED
        event_record(
            tenant=source.tenant,
            type=EventType.SOURCE_FAILED,
            payload={"source_id": str(source.public_id), "name": source.name, "error": error},
        )
    _progress(source, {**stats.as_dict(), "error": error})


def sources_due(*, now=None) -> list[tuple[int, int]]:
    """(tenant id, source id) of scheduled sources whose interval has passed."""
    now = now or timezone.now()
    due = []
    candidates = (
        Source.objects.unscoped()
        .filter(schedule_minutes__gt=0, tenant__is_active=True)
        .exclude(status__in=[Source.Status.QUEUED, Source.Status.SYNCING])
        .values_list("tenant_id", "pk", "schedule_minutes", "last_attempt_at")
    )
    for tenant_id, source_id, minutes, last in candidates:
        if last is None or now - last >= timedelta(minutes=minutes):
            due.append((tenant_id, source_id))
    return due


def source_mark_queued(*, source_ids: list[int]) -> None:
    if source_ids:
        Source.objects.unscoped().filter(pk__in=source_ids).exclude(
            status=Source.Status.SYNCING
        ).update(status=Source.Status.QUEUED)
