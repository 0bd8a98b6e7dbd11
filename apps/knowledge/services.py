"""Writes for knowledge sources: create, update, sync, delete."""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.files.base import File
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from apps.core import realtime
from apps.core.errors import ApplicationError
from apps.events.models import EventType
from apps.events.services import event_record
from apps.knowledge import crawl, runtime
from apps.knowledge.models import Chunk, Document, KnowledgeIndex, Source
from apps.knowledge.parsing import ParseError, detect_format
from apps.knowledge.pipeline import (
    DocumentInput,
    Indexer,
    SyncStats,
    active_index,
    delete_document_points,
    delete_source_points,
    new_collection_name,
    sections_from_json,
)
from apps.knowledge.vectorstore.base import PUBLIC_GROUP

logger = logging.getLogger(__name__)

# A sync that has said nothing for this long is taken to have died with its worker.
SYNC_STALE_AFTER = timedelta(minutes=30)
MAX_GROUPS = 50


# --------------------------------------------------------------------------- validation


def _clean_groups(access_groups: Iterable[str] | None) -> list[str]:
    if access_groups is None:
        return []
    if isinstance(access_groups, str):
        raise ApplicationError("access_groups must be a list of group names.")
    groups = sorted({str(g).strip() for g in access_groups if str(g).strip()})
    if len(groups) > MAX_GROUPS:
        raise ApplicationError(f"At most {MAX_GROUPS} access groups per source.")
    for group in groups:
        if group == PUBLIC_GROUP or len(group) > 64:
            raise ApplicationError(
                f"{group!r} is not a valid access group (1-64 characters, not {PUBLIC_GROUP!r}).",
                extra={"access_groups": group},
            )
    return groups


def validate_url(url: str | None) -> str:
    url = (url or "").strip()
    if not url:
        raise ApplicationError("A URL is required for this kind of source.", extra={"url": ""})
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise ApplicationError(
            "The URL must start with http:// or https:// and name a host.", extra={"url": url}
        )
    if len(url) > 2000:
        raise ApplicationError("The URL is too long (2,000 characters at most).")
    return url


def validate_upload(upload: Any) -> None:
    if upload is None:
        raise ApplicationError("A file is required for an upload source.", extra={"upload": ""})
    size = getattr(upload, "size", None)
    limit = settings.KNOWLEDGE_UPLOAD_MAX_BYTES
    if size is None:
        raise ApplicationError("The upload is not a file.")
    if size == 0:
        raise ApplicationError("The file is empty.", extra={"upload": upload.name})
    if size > limit:
        raise ApplicationError(
            f"The file is too large ({size:,} bytes; the limit is {limit:,}).",
            extra={"upload": upload.name},
        )
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    if not data.strip():
        raise ApplicationError("The file is empty.", extra={"upload": upload.name})
    try:
        fmt = detect_format(
            data=data,
            filename=upload.name or "",
            content_type=getattr(upload, "content_type", None),
        )
    except ParseError as exc:
        raise ApplicationError(exc.reason, extra={"upload": upload.name}) from exc
    if fmt not in ("pdf", "docx") and b"\x00" in data[:8192]:
        # Browsers label unknown files text/plain; NUL bytes say it is a binary file.
        raise ApplicationError(
            "Unsupported file type (a binary file). Supported: Markdown, HTML, PDF, DOCX, "
            "plain text.",
            extra={"upload": upload.name},
        )


def source_validate(
    *,
    kind: str,
    name: str,
    url: str | None = None,
    text: str | None = None,
    upload: Any = None,
    upload_kept: bool = False,
    schedule_minutes: int = 0,
    max_pages: int = 50,
    max_depth: int = 2,
    access_groups: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Check a source's fields (kind/field combinations, sizes, URL schemes); the cleaned values.

    `upload_kept`: an upload source keeps the file it already has (not re-read here).
    """
    if kind not in Source.Kind.values:
        raise ApplicationError(
            f"Unknown source kind {kind!r}; use one of {', '.join(Source.Kind.values)}.",
            extra={"kind": kind},
        )
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ApplicationError("A name of 1-200 characters is required.", extra={"name": name})
    if schedule_minutes < 0 or schedule_minutes > 60 * 24 * 365:
        raise ApplicationError("schedule_minutes must be between 0 and 525600.")
    if not 1 <= max_pages <= settings.KNOWLEDGE_CRAWL_MAX_PAGES:
        raise ApplicationError(
            f"max_pages must be between 1 and {settings.KNOWLEDGE_CRAWL_MAX_PAGES}."
        )
    if not 0 <= max_depth <= 10:
        raise ApplicationError("max_depth must be between 0 and 10.")
    cleaned: dict[str, Any] = {"name": name, "url": "", "text": ""}
    if kind == Source.Kind.TEXT:
        if upload is not None:
            raise ApplicationError("A text source takes text (and an optional link), not a file.")
        if not text or not text.strip():
            raise ApplicationError("The text is empty.", extra={"text": ""})
        if len(text) > settings.KNOWLEDGE_TEXT_MAX_CHARS:
            raise ApplicationError(
                f"The text is too long ({len(text):,} characters; "
                f"the limit is {settings.KNOWLEDGE_TEXT_MAX_CHARS:,})."
            )
        cleaned["text"] = text
        # A text source may name the page it comes from, so answers can link to it.
        cleaned["url"] = validate_url(url) if url else ""
    if kind in (Source.Kind.URL, Source.Kind.SITEMAP):
        if text or upload is not None:
            raise ApplicationError("A web source takes a URL only (no text, no file).")
        cleaned["url"] = validate_url(url)
    if kind == Source.Kind.UPLOAD:
        if text or url:
            raise ApplicationError("An upload source takes a file only (no URL, no text).")
        if upload is not None or not upload_kept:
            validate_upload(upload)
    cleaned["access_groups"] = _clean_groups(access_groups)
    return cleaned


# --------------------------------------------------------------------------- writes


def source_create(
    *,
    tenant: Any,
    kind: str,
    name: str,
    url: str | None = None,
    text: str | None = None,
    upload: Any = None,
    access_groups: Iterable[str] | None = None,
    schedule_minutes: int = 0,
    created_by: Any = None,
    max_pages: int = 50,
    max_depth: int = 2,
    sync: bool = True,
) -> Source:
    """Validate and save a source; its first sync is queued once the transaction commits."""
    cleaned = source_validate(
        kind=kind,
        name=name,
        url=url,
        text=text,
        upload=upload,
        schedule_minutes=schedule_minutes,
        max_pages=max_pages,
        max_depth=max_depth,
        access_groups=access_groups,
    )
    groups = cleaned["access_groups"]
    with transaction.atomic():
        source = Source(
            tenant=tenant,
            kind=kind,
            name=cleaned["name"],
            url=cleaned["url"],
            text=cleaned["text"],
            access_groups=groups,
            schedule_minutes=schedule_minutes,
            max_pages=max_pages,
            max_depth=max_depth,
            created_by=created_by,
            status=Source.Status.QUEUED if sync else Source.Status.IDLE,
        )
        if upload is not None:
            file = upload if isinstance(upload, File) else File(upload)
            source.upload.save(posixpath.basename(upload.name or "upload"), file, save=False)
        source.save()
        if sync:
            _enqueue(source)
    return source


def source_update(
    *,
    tenant: Any,
    source: Source,
    name: str | None = None,
    text: str | None = None,
    url: str | None = None,
    upload: Any = None,
    access_groups: Iterable[str] | None = None,
    schedule_minutes: int | None = None,
    max_pages: int | None = None,
    max_depth: int | None = None,
    sync: bool = True,
) -> Source:
    """Change a source's content or settings (None keeps a field) and re-sync it."""
    _check_tenant(tenant, source)

    def pick(new: Any, old: Any) -> Any:
        return old if new is None else new

    cleaned = source_validate(
        kind=source.kind,
        name=pick(name, source.name),
        url=pick(url, source.url) or None,
        text=pick(text, source.text) or None,
        upload=upload,
        upload_kept=bool(source.upload),
        schedule_minutes=pick(schedule_minutes, source.schedule_minutes),
        max_pages=pick(max_pages, source.max_pages),
        max_depth=pick(max_depth, source.max_depth),
        access_groups=pick(access_groups, source.access_groups),
    )
    with transaction.atomic():
        source = Source.objects.for_tenant(tenant).select_for_update().get(pk=source.pk)
        source.name = cleaned["name"]
        source.url = cleaned["url"]
        source.text = cleaned["text"]
        source.access_groups = cleaned["access_groups"]
        source.schedule_minutes = pick(schedule_minutes, source.schedule_minutes)
        source.max_pages = pick(max_pages, source.max_pages)
        source.max_depth = pick(max_depth, source.max_depth)
        if upload is not None:
            file = upload if isinstance(upload, File) else File(upload)
            source.upload.save(posixpath.basename(upload.name or "upload"), file, save=False)
        if sync:
            source.status = Source.Status.QUEUED
            _enqueue(source)
        source.save()
    return source


def source_request_sync(*, tenant: Any, source: Source) -> Source:
    """Queue a sync now ("sync now" in the admin, the API)."""
    _check_tenant(tenant, source)
    with transaction.atomic():
        source = Source.objects.for_tenant(tenant).select_for_update().get(pk=source.pk)
        if source.status != Source.Status.SYNCING:
            source.status = Source.Status.QUEUED
            source.save(update_fields=["status", "updated_at"])
        _enqueue(source)
    return source


def source_delete(*, tenant: Any, source: Source) -> None:
    """Remove a source, its documents, chunks and points."""
    _check_tenant(tenant, source)
    delete_source_points(source=source)
    upload = source.upload.name if source.upload else ""
    with transaction.atomic():
        Source.objects.for_tenant(tenant).filter(pk=source.pk).delete()
    if upload:
        source.upload.storage.delete(upload)


def document_delete(*, tenant: Any, document: Document) -> None:
    if document.tenant_id != tenant.pk:
        raise ApplicationError("No such document.", status_code=404, code="not_found")
    delete_document_points(document=document)
    Document.objects.for_tenant(tenant).filter(pk=document.pk).delete()
    _recount(Source.objects.for_tenant(tenant).get(pk=document.source_id))


def chunk_delete(*, tenant: Any, chunk: Chunk) -> None:
    """Remove one chunk and its point (the document keeps its other chunks)."""
    if chunk.tenant_id != tenant.pk:
        raise ApplicationError("No such chunk.", status_code=404, code="not_found")
    Chunk.objects.for_tenant(tenant).filter(pk=chunk.pk).delete()
    runtime.get_store().delete_points(chunk.index.collection, [str(chunk.point_id)])
    Document.objects.for_tenant(tenant).filter(pk=chunk.document_id).update(
        chunk_count=Chunk.objects.for_tenant(tenant).filter(document_id=chunk.document_id).count()
    )


def _check_tenant(tenant: Any, source: Source) -> None:
    if tenant is None or source.tenant_id != tenant.pk:
        raise ApplicationError("No such source.", status_code=404, code="not_found")


def _enqueue(source: Source) -> None:
    tenant_id, source_id = source.tenant_id, source.pk

    def send() -> None:
        from apps.knowledge.tasks import sync_source

        sync_source.delay(tenant_id, source_id)

    transaction.on_commit(send)


# --------------------------------------------------------------------------- sync


def _claim(tenant: Any, source: Source) -> Source | None:
    """Mark the source syncing, unless a live sync holds it."""
    now = timezone.now()
    with transaction.atomic():
        source = Source.objects.for_tenant(tenant).select_for_update().get(pk=source.pk)
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


def _recount(source: Source) -> None:
    documents = Document.objects.for_tenant(source.tenant).filter(source=source)
    source.document_count = documents.filter(status=Document.Status.OK).count()
    source.failed_document_count = documents.filter(status=Document.Status.FAILED).count()
    source.chunk_count = sum(documents.values_list("chunk_count", flat=True))
    Source.objects.for_tenant(source.tenant).filter(pk=source.pk).update(
        document_count=source.document_count,
        failed_document_count=source.failed_document_count,
        chunk_count=source.chunk_count,
    )


def source_sync(*, tenant: Any, source: Source) -> SyncStats | None:
    """Fetch, parse, chunk, embed and store what changed; None when a sync already runs.

    Transient fetch errors (`crawl.TransientFetchError`) are recorded and re-raised so the
    task can retry; every other failure is recorded on the source and not raised.
    """
    _check_tenant(tenant, source)
    claimed = _claim(tenant, source)
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
    _recount(source)
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
    _recount(source)
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


# --------------------------------------------------------------------------- reindex

CATCH_UP_PASSES = 3


class BuildAbandonedError(Exception):
    """The build was declared dead (no progress for KNOWLEDGE_REINDEX_STALE_SECONDS) by a sweep
    while it was still running; it stops instead of going live."""


class _RebuildProgress:
    """Counts for the index row, the admin's progress bars and each tenant's own view."""

    def __init__(self, index: KnowledgeIndex) -> None:
        self.index = index
        self.tenant_done: dict[int, int] = {}
        self.tenant_total: dict[int, int] = {}
        # Counts before the current source's Indexer started (its stats start from zero).
        self.base_documents = 0
        self.base_chunks = 0
        self.tenant_base = 0

    def tenant_started(self, tenant_id: int, total: int) -> None:
        self.tenant_done[tenant_id] = 0
        self.tenant_total[tenant_id] = total

    def flushed(self, tenant_id: int, stats: SyncStats) -> None:
        index = self.index
        index.documents_done = self.base_documents + stats.documents_seen
        index.chunks_done = self.base_chunks + stats.chunks_embedded + stats.chunks_kept
        # `updated_at` is the build's heartbeat: a build silent for longer than
        # KNOWLEDGE_REINDEX_STALE_SECONDS is taken for dead and swept.
        moved = KnowledgeIndex.objects.filter(
            pk=index.pk, status=KnowledgeIndex.Status.BUILDING
        ).update(
            documents_done=index.documents_done,
            chunks_done=index.chunks_done,
            updated_at=timezone.now(),
        )
        if not moved:
            raise BuildAbandonedError(f"{index.collection} was marked failed while building")
        self.tenant_done[tenant_id] = self.tenant_base + stats.documents_seen
        self.send(tenant_id)

    def send(self, tenant_id: int | None = None) -> None:
        index = self.index
        realtime.send_reindex_progress(
            index_id=index.public_id,
            status=index.status,
            progress={
                "documents_done": index.documents_done,
                "documents_total": index.documents_total,
                "chunks_done": index.chunks_done,
                "chunks_total": index.chunks_total,
                "percent": index.percent,
                "error": index.error,
            },
        )
        tenants = [tenant_id] if tenant_id is not None else list(self.tenant_total)
        for tid in tenants:
            total = self.tenant_total.get(tid, 0)
            done = self.tenant_done.get(tid, 0)
            realtime.send_reindex_progress(
                index_id=index.public_id,
                status=index.status,
                tenant_id=tid,
                progress={
                    "documents_done": done,
                    "documents_total": total,
                    "percent": 100
                    if index.status == "ready"
                    else (round(100 * done / total) if total else 0),
                },
            )


def _reindex_documents(index: KnowledgeIndex, documents: Any, progress: _RebuildProgress) -> None:
    """Chunk and embed `documents` (a queryset over all tenants) into `index`, by source."""
    by_source: dict[int, list[Document]] = {}
    for document in documents.select_related("source", "source__tenant").order_by(
        "tenant_id", "source_id", "pk"
    ):
        by_source.setdefault(document.source_id, []).append(document)
    for docs in by_source.values():
        source = docs[0].source
        tenant_id = source.tenant_id
        if tenant_id not in progress.tenant_total:
            progress.tenant_started(tenant_id, 0)
        progress.tenant_base = progress.tenant_done.get(tenant_id, 0)
        progress.base_documents = progress.index.documents_done
        progress.base_chunks = progress.index.chunks_done
        indexer = Indexer(
            source=source,
            index=index,
            reindex=True,
            on_flush=lambda stats, tid=tenant_id: progress.flushed(tid, stats),
        )
        for document in docs:
            # Counted before it is planned: a batch that plan() flushes includes it. (Only
            # `Indexer.add` counts documents; a reindex plans stored sections directly.)
            indexer.stats.documents_seen += 1
            indexer.plan(
                document, sections=sections_from_json(document.sections), title=document.title
            )
        indexer.finish()
        progress.flushed(tenant_id, indexer.stats)


def index_fail_stale_builds() -> list[KnowledgeIndex]:
    """Mark failed the builds whose worker died (killed, out of memory, machine gone) and free
    what they wrote. A build is taken for dead when its progress has not moved for
    KNOWLEDGE_REINDEX_STALE_SECONDS; the serving index is never touched.

    Runs before every full reindex and from beat (`fail_stale_reindexes`), so a half-built
    collection does not sit on disk, nor block the next reindex, until someone starts one.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.KNOWLEDGE_REINDEX_STALE_SECONDS)
    failed = []
    for index in KnowledgeIndex.objects.filter(
        status=KnowledgeIndex.Status.BUILDING, updated_at__lt=cutoff
    ):
        error = "Interrupted: the reindex stopped without finishing (worker killed?)."
        if _abandon(index, error, stale_before=cutoff):
            logger.warning("reindex into %s: %s", index.collection, error)
            failed.append(index)
    return failed


def _abandon(index: KnowledgeIndex, error: str, *, stale_before: Any = None) -> bool:
    """Mark a build failed and free what it wrote; the serving index is never touched.

    Only a row still `building` is marked (an error recorded by a sweep is kept when the
    swept build notices and stops); what the build wrote is freed either way. A sweep passes
    `stale_before` and changes nothing if the build moved since then (it is alive after all).
    Returns whether this call marked the row.
    """
    rows = KnowledgeIndex.objects.filter(pk=index.pk, status=KnowledgeIndex.Status.BUILDING)
    if stale_before is not None:
        rows = rows.filter(updated_at__lt=stale_before)
    now = timezone.now()
    marked = bool(
        rows.update(
            status=KnowledgeIndex.Status.FAILED,
            error=error[:5000],
            finished_at=now,
            updated_at=now,
        )
    )
    if not marked and stale_before is not None:
        return False
    index.refresh_from_db(fields=["status", "error", "finished_at", "updated_at"])
    Chunk.objects.unscoped().filter(index=index).delete()
    try:
        runtime.get_store().delete_collection(index.collection)
    except Exception:
        logger.exception("could not delete the collection of failed index %s", index.collection)
    return marked


def _refuse_while_building() -> None:
    """409 while a full reindex is running; builds whose worker died are swept first, so they
    do not block the next one."""
    index_fail_stale_builds()
    if KnowledgeIndex.objects.filter(status=KnowledgeIndex.Status.BUILDING).exists():
        raise ApplicationError("A reindex is already running.", code="conflict", status_code=409)


def index_rebuild_request() -> None:
    """ "Start reindex": queue a full reindex unless one is running."""
    _refuse_while_building()
    from apps.knowledge.tasks import reindex

    transaction.on_commit(reindex.delay)


def index_rebuild(
    *,
    tenant_id: int | None = None,
    model_path: str | None = None,
    chunking: dict[str, Any] | None = None,
) -> KnowledgeIndex | None:
    """Rebuild the index with zero downtime.

    Without `tenant_id`: build a new collection (new model and/or chunking allowed) from every
    document of every tenant, switch the alias atomically, then retire the old collection.
    Search answers from the old collection until the switch; a failure leaves it serving and
    marks the new index failed. With `tenant_id`: re-embed that tenant's chunks in place in the
    serving index (same model and chunking; each document's new points are written before its
    old ones are removed).
    """
    if tenant_id is not None:
        if model_path or chunking:
            raise ApplicationError(
                "A new model or chunking applies to every tenant; reindex without tenant_id."
            )
        return _refresh_tenant(tenant_id)
    _refuse_while_building()
    old = active_index()
    store = runtime.get_store()
    embedder = runtime.get_embedder(model_path)
    config = runtime.chunking_config({**(old.chunking or {}), **(chunking or {})})
    documents = Document.objects.unscoped().filter(
        status=Document.Status.OK, tenant__is_active=True
    )
    index = KnowledgeIndex.objects.create(
        collection=new_collection_name(),
        embedding_model=embedder.model_name,
        embedding_model_path=embedder.model_path,
        dimension=embedder.dimension,
        chunking=config,
        status=KnowledgeIndex.Status.BUILDING,
        documents_total=documents.count(),
        chunks_total=Chunk.objects.unscoped().filter(index=old).count(),
    )
    progress = _RebuildProgress(index)
    for tid, total in (
        documents.values_list("tenant_id").annotate(n=Count("pk")).values_list("tenant_id", "n")
    ):
        progress.tenant_started(tid, total)
    progress.send()
    try:
        store.ensure_collection(index.collection, dense_dim=index.dimension)
        started = timezone.now()
        _reindex_documents(index, documents, progress)
        # Documents synced while we built went to the old index: bring them over too.
        for _ in range(CATCH_UP_PASSES):
            changed = documents.filter(updated_at__gte=started)
            started = timezone.now()
            if not changed.exists():
                break
            _reindex_documents(index, changed, progress)
        _switch(old, index)
    except BaseException as exc:
        logger.exception("reindex into %s failed", index.collection)
        _abandon(index, f"{type(exc).__name__}: {exc}")
        progress.send()
        if not isinstance(exc, Exception):
            raise
        return index
    progress.send()
    return index


def _switch(old: KnowledgeIndex, new: KnowledgeIndex) -> None:
    store = runtime.get_store()
    alias = settings.QDRANT_COLLECTION
    now = timezone.now()
    switched = False
    try:
        with transaction.atomic():
            # The row stays locked until the switch is recorded: a sweep that took this build
            # for dead cannot fail it (and delete its collection) while the alias moves to it.
            alive = (
                KnowledgeIndex.objects.select_for_update()
                .filter(pk=new.pk, status=KnowledgeIndex.Status.BUILDING)
                .exists()
            )
            if not alive:
                raise BuildAbandonedError(f"{new.collection} was marked failed while building")
            store.switch_alias(alias, new.collection)
            switched = True
            KnowledgeIndex.objects.filter(pk=old.pk).update(
                status=KnowledgeIndex.Status.RETIRED, retired_at=now, updated_at=now
            )
            KnowledgeIndex.objects.filter(pk=new.pk).update(
                status=KnowledgeIndex.Status.READY,
                activated_at=now,
                finished_at=now,
                documents_done=F("documents_total"),
                updated_at=now,
            )
    except BaseException:
        if switched:
            store.switch_alias(alias, old.collection)  # the database still says old: follow it
        raise
    new.refresh_from_db()
    old.status = KnowledgeIndex.Status.RETIRED
    # The old collection served until this point; now it and its rows can go.
    Chunk.objects.unscoped().filter(index=old).delete()
    try:
        store.delete_collection(old.collection)
    except Exception:
        logger.exception("could not delete retired collection %s", old.collection)
    counts = (
        Chunk.objects.unscoped().filter(index=new).values("document_id").annotate(n=Count("pk"))
    )
    for row in counts:
        Document.objects.unscoped().filter(pk=row["document_id"]).update(chunk_count=row["n"])
    for source in Source.objects.unscoped().select_related("tenant"):
        _recount(source)


def _refresh_tenant(tenant_id: int) -> KnowledgeIndex:
    index = active_index()
    sources = Source.objects.unscoped().filter(tenant_id=tenant_id).select_related("tenant")
    for source in sources:
        indexer = Indexer(source=source, index=index, force=True)
        for document in Document.objects.for_tenant(source.tenant).filter(
            source=source, status=Document.Status.OK
        ):
            indexer.plan(
                document, sections=sections_from_json(document.sections), title=document.title
            )
        indexer.finish()
    return index
