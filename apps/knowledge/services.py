"""Writes for knowledge sources: validate, create, update, queue a sync, delete (sources,
documents, chunks).

Running a sync is in `sync`; the index the writes go to, in `index_lifecycle`.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.files.base import File
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.knowledge import runtime
from apps.knowledge.index_lifecycle import delete_document_points, delete_source_points
from apps.knowledge.index_stats import source_recount
from apps.knowledge.models import Chunk, Document, Source
from apps.knowledge.parsing import ParseError, detect_format
from apps.knowledge.vectorstore.base import PUBLIC_GROUP

logger = logging.getLogger(__name__)

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
        source = Source.objects.for_tenant(source.tenant_id).select_for_update().get(pk=source.pk)
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


def source_request_sync(*, source: Source) -> Source:
    """Queue a sync now ("sync now" in the admin, the API)."""
    with transaction.atomic():
        source = Source.objects.for_tenant(source.tenant_id).select_for_update().get(pk=source.pk)
        if source.status != Source.Status.SYNCING:
            source.status = Source.Status.QUEUED
            source.save(update_fields=["status", "updated_at"])
        _enqueue(source)
    return source


def source_delete(*, source: Source) -> None:
    """Remove a source, its documents, chunks and points."""
    delete_source_points(source=source)
    upload = source.upload.name if source.upload else ""
    with transaction.atomic():
        Source.objects.for_tenant(source.tenant_id).filter(pk=source.pk).delete()
    if upload:
        source.upload.storage.delete(upload)


def document_delete(*, document: Document) -> None:
    """Remove a document, its chunks and points, and recount its source."""
    tenant_id = document.tenant_id
    delete_document_points(document=document)
    Document.objects.for_tenant(tenant_id).filter(pk=document.pk).delete()
    source_recount(source=Source.objects.for_tenant(tenant_id).get(pk=document.source_id))


def chunk_delete(*, chunk: Chunk) -> None:
    """Remove one chunk and its point (the document keeps its other chunks)."""
    tenant_id = chunk.tenant_id
    Chunk.objects.for_tenant(tenant_id).filter(pk=chunk.pk).delete()
    runtime.get_store().delete_points(chunk.index.collection, [str(chunk.point_id)])
    Document.objects.for_tenant(tenant_id).filter(pk=chunk.document_id).update(
        chunk_count=Chunk.objects.for_tenant(tenant_id)
        .filter(document_id=chunk.document_id)
        .count()
    )


def _enqueue(source: Source) -> None:
    # Celery pattern: tasks imports this module (through sync), so the task is imported here.
    from apps.knowledge.tasks import sync_source

    tenant_id, source_id = source.tenant_id, source.pk
    transaction.on_commit(lambda: sync_source.delay(tenant_id, source_id))
