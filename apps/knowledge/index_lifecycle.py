"""The life of a knowledge index (a Qdrant collection behind the serving alias), blue-green.

Which index serves (`active_index`, created or adopted on a fresh install and healed when the
store lost its collection; `serving_index` for search), which receive deletes (`live_indexes`),
and the zero-downtime rebuild: build a new collection in the background, catch up with what was
synced meanwhile, switch the alias atomically, retire the old one; a failed or abandoned build
is marked failed and freed, and the old index keeps serving.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from apps.core import realtime
from apps.core.errors import ApplicationError
from apps.knowledge import runtime
from apps.knowledge.index_inputs import sections_from_json
from apps.knowledge.index_stats import SyncStats, source_recount
from apps.knowledge.models import Chunk, Document, KnowledgeIndex, Source
from apps.knowledge.pipeline import Indexer
from apps.knowledge.vectorstore.base import CollectionNotFoundError
from apps.knowledge.vectorstore.interface import VectorStore

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- serving


def live_indexes() -> list[KnowledgeIndex]:
    """Indexes that receive deletes: the active one and any being built."""
    return list(
        KnowledgeIndex.objects.filter(
            status__in=[KnowledgeIndex.Status.READY, KnowledgeIndex.Status.BUILDING]
        )
    )


def active_index() -> KnowledgeIndex:
    """The index the alias points at, creating (or adopting) the first one on a fresh install."""
    index = KnowledgeIndex.objects.filter(status=KnowledgeIndex.Status.READY).first()
    if index is not None:
        _heal_missing_collection(index)
        return index
    embedder = runtime.get_embedder()
    store = runtime.get_store()
    alias = settings.QDRANT_COLLECTION
    dimension = embedder.dimension
    target = store.get_alias_target(alias)
    # When the database lost track (fresh database, same store), adopt what the alias serves.
    adopt = bool(target) and target in store.list_collections()
    name = target if adopt else new_collection_name()
    store.ensure_collection(name, dense_dim=dimension)
    try:
        with transaction.atomic():
            index, _ = KnowledgeIndex.objects.get_or_create(
                collection=name,
                defaults={
                    "embedding_model": embedder.model_name,
                    "embedding_model_path": embedder.model_path,
                    "dimension": dimension,
                    "chunking": runtime.chunking_config(),
                    "status": KnowledgeIndex.Status.READY,
                    "activated_at": timezone.now(),
                },
            )
            if index.status != KnowledgeIndex.Status.READY:
                index.status = KnowledgeIndex.Status.READY
                index.activated_at = timezone.now()
                index.save(update_fields=["status", "activated_at", "updated_at"])
    except IntegrityError:
        # Another process created the active index at the same moment; use theirs.
        return KnowledgeIndex.objects.get(status=KnowledgeIndex.Status.READY)
    if target != name:
        store.switch_alias(alias, name)
    return index


def _heal_missing_collection(index: KnowledgeIndex) -> None:
    """The store lost the serving collection (its files were removed, a new Qdrant server):
    recreate it empty and forget its chunk rows, so the next sync of each source embeds its
    documents again instead of trusting hashes of vectors that no longer exist."""
    store = runtime.get_store()
    if index.collection in store.list_collections():
        return
    logger.error(
        "collection %s of the active index is missing from the vector store; recreating it "
        "empty. Re-sync every source (or run a reindex) to fill it again.",
        index.collection,
    )
    store.ensure_collection(index.collection, dense_dim=index.dimension)
    store.switch_alias(settings.QDRANT_COLLECTION, index.collection)
    Chunk.objects.unscoped().filter(index=index).delete()


def new_collection_name() -> str:
    stamp = timezone.now().strftime("%Y%m%d%H%M%S")
    return f"{settings.QDRANT_COLLECTION}_{stamp}_{uuid.uuid4().hex[:6]}"


def serving_index(store: VectorStore | None = None) -> KnowledgeIndex | None:
    """The index the alias serves (the ready one if the alias is missing), or None."""
    store = store or runtime.get_store()
    target = store.get_alias_target(settings.QDRANT_COLLECTION)
    index = None
    if target:
        index = KnowledgeIndex.objects.filter(collection=target).first()
    if index is None:
        index = KnowledgeIndex.objects.filter(status=KnowledgeIndex.Status.READY).first()
    return index


# --------------------------------------------------------------------------- deletes


def delete_document_points(*, document: Document) -> None:
    """Remove a document's points from every live index (rows go with the document)."""
    _delete_points_by(tenant=document.tenant, document_id=str(document.public_id))


def delete_source_points(*, source: Source) -> None:
    _delete_points_by(tenant=source.tenant, source_id=str(source.public_id))


def _delete_points_by(*, tenant: Any, **owner: str) -> None:
    store = runtime.get_store()
    for index in live_indexes():
        try:
            store.delete_by_filter(index.collection, tenant_id=str(tenant.public_id), **owner)
        except CollectionNotFoundError:
            continue  # nothing stored there to delete


# --------------------------------------------------------------------------- rebuild

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
    # Celery pattern: tasks imports this module, so the task is imported when it is queued.
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
        source_recount(source=source)


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
