"""The indexing pipeline: parsed documents in, chunks embedded and stored, rows written.

`Indexer` takes one document at a time, chunks it, compares content hashes with the chunks the
index already holds for that document, and queues only new or changed chunks. Queued chunks of
many documents are embedded together (batching is what makes embedding fast), upserted, and
then each document's rows are replaced in one transaction. Stale points are deleted only after
that transaction commits, so a failure at any step leaves the previous version searchable.

Ordering, and why it is safe:
1. upsert new points (not yet visible: search maps points to `Chunk` rows and drops the rest);
2. one transaction: new `Chunk` rows, removed rows, document fields (now visible);
3. delete the removed chunks' points (until then they are unmapped, so never shown).

What it takes in and the hashes live in `index_inputs`, the row reads and the batch transaction
in `index_rows`, the counts in `index_stats`; which index is active, in `index_lifecycle`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.knowledge import runtime
from apps.knowledge.chunking import Chunk as ChunkSpec
from apps.knowledge.index_inputs import (
    DocumentInput,
    parse_limits,
    payload_hash,
    sections_hash,
    sections_to_json,
    titled_sections,
)
from apps.knowledge.index_rows import DocumentPlan, SourceRows, write_batch
from apps.knowledge.index_stats import SyncStats
from apps.knowledge.models import Chunk, Document, KnowledgeIndex, Source
from apps.knowledge.parsing import ParsedDocument, ParseError, Section, parse_document
from apps.knowledge.rerank import WINDOWS_FIELD, pack_vectors, window_texts
from apps.knowledge.vectorstore.base import ChunkPoint, chunk_payload

logger = logging.getLogger(__name__)

UPSERT_BATCH = 256
# Chunks are embedded once this many model batches are queued. One encode call over many
# chunks lets sentence-transformers sort them by length, so each batch pads to similar
# lengths; flushing every 64 chunks cost a third of the model's speed (docs/retrieval.md).
FLUSH_BATCHES = 8


class Indexer:
    """Indexes documents of one source into one KnowledgeIndex (see the module docstring).

    `reindex=True` builds the chunks of an index that is not active yet: document rows are
    left alone (they describe what the active index serves). `force=True` re-embeds every
    chunk even when its hash is unchanged (new points are written before old ones go).
    """

    def __init__(
        self,
        *,
        source: Source,
        index: KnowledgeIndex,
        reindex: bool = False,
        force: bool = False,
        on_flush: Callable[[SyncStats], None] | None = None,
    ) -> None:
        self.source = source
        self.force = force
        self.tenant = source.tenant
        self.index = index
        self.reindex = reindex
        self.on_flush = on_flush
        model_path = index.embedding_model_path or None
        self.embedder = runtime.get_embedder(model_path)
        self.sparse = runtime.sparse_encoder_for(index.chunking)
        self.chunking = runtime.chunking_config(index.chunking)
        self.sparse_title_boost = bool((index.chunking or {}).get("sparse_title_boost"))
        self.chunker = runtime.get_chunker(model_path=model_path, config=self.chunking)
        self.store = runtime.get_store()
        self.batch_size = settings.KNOWLEDGE_EMBED_BATCH_SIZE
        self.stats = SyncStats()
        self.seen_keys: set[str] = set()
        self.rows = SourceRows(source=source, index=index)
        self._pending: list[DocumentPlan] = []
        self._pending_chunks = 0

    def add(self, item: DocumentInput) -> Document:
        """Parse and plan one document; embeds when enough chunks are queued."""
        if item.key in self.seen_keys:
            logger.info("document %r listed twice in one sync; the first one counts", item.key)
            return self.rows.document(item)
        self.stats.documents_seen += 1
        self.seen_keys.add(item.key)
        document = self.rows.document(item)
        sections = item.sections
        title = item.title
        if sections is None:
            try:
                parsed: ParsedDocument = parse_document(
                    data=item.data or b"",
                    filename=item.filename or item.key,
                    content_type=item.content_type,
                    limits=parse_limits(),
                )
            except ParseError as exc:
                self._fail(document, item, exc.reason)
                return document
            sections = parsed.sections
            title = title or parsed.title
        title = (title or item.key)[:500]
        self.plan(document, sections=sections, title=title, item=item)
        return document

    def plan(
        self,
        document: Document,
        *,
        sections: list[Section],
        title: str,
        item: DocumentInput | None = None,
    ) -> None:
        groups = sorted(set(self.source.access_groups or []))
        url = (item.url if item else document.url)[:2000]
        digest = sections_hash(sections)
        p_hash = payload_hash(title=title, url=url, access_groups=groups)
        existing = self.rows.existing_chunks(document)
        fields: dict[str, Any] = {}
        if not self.reindex:
            fields = {
                "title": title,
                "url": url,
                "content_hash": digest,
                "access_groups": groups,
                "status": Document.Status.OK,
                "error": "",
                "sections": sections_to_json(sections),
                "fetched_at": timezone.now(),
            }
            if item is not None:
                fields.update(etag=item.etag, last_modified=item.last_modified, links=item.links)
        unchanged = (
            not self.reindex
            and not self.force
            and document.content_hash == digest
            and document.status == Document.Status.OK
            and existing
            and all(c.payload_hash == p_hash for c in existing)
        )
        if unchanged:
            self.stats.documents_unchanged += 1
            self.stats.chunks_kept += len(existing)
            # Validators and fetch time still move on, so the next conditional GET is right.
            Document.objects.for_tenant(self.tenant).filter(pk=document.pk).update(
                **{
                    k: fields[k]
                    for k in ("etag", "last_modified", "links", "fetched_at")
                    if k in fields
                }
            )
            return
        chunks = self.chunker.chunk_sections(
            titled_sections(sections, title=title, chunking=self.chunking)
        )
        by_hash: dict[str, list[Chunk]] = {}
        for row in existing:
            if row.payload_hash == p_hash and not self.force:
                by_hash.setdefault(row.content_hash, []).append(row)
        keep, new = [], []
        for spec in chunks:
            matches = by_hash.get(spec.content_hash)
            if matches:
                keep.append((matches.pop(), spec))
            else:
                new.append(spec)
        kept_ids = {row.pk for row, _ in keep}
        stale = [row for row in existing if row.pk not in kept_ids]
        plan = DocumentPlan(
            document=document,
            chunks=chunks,
            keep=keep,
            new=new,
            stale=stale,
            fields=fields,
            payload_hash=p_hash,
            changed=document.content_hash != digest,
        )
        self._pending.append(plan)
        self._pending_chunks += len(new)
        if self._pending_chunks >= self.batch_size * FLUSH_BATCHES:
            self.flush()

    def _fail(self, document: Document, item: DocumentInput, reason: str) -> None:
        """A document that cannot be parsed keeps whatever it had indexed before."""
        self.stats.documents_failed += 1
        self.stats.errors.append(f"{item.url or item.filename or item.key}: {reason}")
        document.status = Document.Status.FAILED
        document.error = reason
        document.fetched_at = timezone.now()
        if not document.title:
            document.title = (item.title or item.key)[:500]
        if document.pk is None:
            document.save()
        else:
            document.save(update_fields=["status", "error", "fetched_at", "title", "updated_at"])

    def fail(self, item: DocumentInput, reason: str) -> None:
        """Record a fetch failure for a document (it keeps its chunks)."""
        if item.key in self.seen_keys:
            return
        self.stats.documents_seen += 1
        self.seen_keys.add(item.key)
        self._fail(self.rows.document(item), item, reason)

    def keep_unchanged(self, key: str) -> None:
        """A page the server says has not changed (304): nothing to do but remember it."""
        self.stats.documents_seen += 1
        self.stats.documents_unchanged += 1
        self.seen_keys.add(key)

    # ------------------------------------------------------------------ batches

    def flush(self) -> None:
        plans, self._pending, self._pending_chunks = self._pending, [], 0
        if not plans:
            return
        specs = [spec for plan in plans for spec in plan.new]
        texts = [spec.embed_text for spec in specs]
        dense = self.embedder.embed_documents(texts, batch_size=self.batch_size) if texts else []
        sparse_texts = texts
        if self.sparse_title_boost:
            # The title once more for the sparse side: short answers rarely repeat the
            # question's words, the title does (measured in docs/retrieval.md).
            titles = [plan.fields.get("title", plan.document.title) for plan in plans]
            sparse_texts = [
                f"{title}\n{spec.embed_text}"
                for plan, title in zip(plans, titles, strict=True)
                for spec in plan.new
            ]
        sparse = self.sparse.encode_documents(sparse_texts)
        windows = self._window_vectors(specs)
        rows: list[Chunk] = []
        points: list[ChunkPoint] = []
        i = 0
        for plan in plans:
            title = plan.fields.get("title", plan.document.title)
            url = plan.fields.get("url", plan.document.url)
            version = plan.document.version
            if not self.reindex and (plan.changed or version == 0):
                version += 1
            groups = sorted(set(self.source.access_groups or []))
            for spec in plan.new:
                row = Chunk(
                    tenant=self.tenant,
                    document=plan.document,
                    source=self.source,
                    index=self.index,
                    text=spec.text,
                    heading_path=list(spec.heading_path),
                    position=spec.position,
                    token_count=spec.token_count,
                    content_hash=spec.content_hash,
                    payload_hash=plan.payload_hash,
                    point_id=uuid.uuid4(),
                )
                payload = chunk_payload(
                    tenant_id=str(self.tenant.public_id),
                    source_id=str(self.source.public_id),
                    document_id=str(plan.document.public_id),
                    chunk_id=str(row.point_id),
                    access_groups=groups,
                    text=spec.text,
                    title=title,
                    url=url,
                    heading_path=spec.heading_path,
                    version=version,
                    **({WINDOWS_FIELD: windows[i]} if windows[i] else {}),
                )
                points.append(
                    ChunkPoint(
                        id=str(row.point_id), dense=dense[i], sparse=sparse[i], payload=payload
                    )
                )
                rows.append(row)
                i += 1
        collection = self.index.collection
        written: list[str] = []
        try:
            for start in range(0, len(points), UPSERT_BATCH):
                batch = points[start : start + UPSERT_BATCH]
                self.store.upsert(collection, batch)
                written.extend(p.id for p in batch)
            stale_ids = write_batch(
                tenant=self.tenant, plans=plans, rows=rows, reindex=self.reindex
            )
        except BaseException:
            self._forget_points(written)
            raise
        transaction.on_commit(lambda: self._delete_points(stale_ids))
        self.stats.chunks_embedded += len(rows)
        self.stats.chunks_kept += sum(len(p.keep) for p in plans)
        self.stats.chunks_deleted += len(stale_ids)
        self.stats.documents_changed += len(plans)
        if self.on_flush is not None:
            self.on_flush(self.stats)

    def _window_vectors(self, specs: Sequence[ChunkSpec]) -> list[str]:
        """Each chunk's sentence windows, embedded in one batch and packed for the payload
        (the rerank's max-sim); "" for every chunk when the index does not keep them."""
        if not self.chunking.get("rerank_windows"):
            return [""] * len(specs)
        texts: list[str] = []
        bounds: list[tuple[int, int]] = []
        for spec in specs:
            windows = window_texts(spec.text, spec.heading_path)
            bounds.append((len(texts), len(texts) + len(windows)))
            texts.extend(windows)
        vectors = self.embedder.embed_documents(texts, batch_size=self.batch_size)
        return [pack_vectors(vectors[a:b]) if b > a else "" for a, b in bounds]

    def _delete_points(self, ids: list[str]) -> None:
        if not ids:
            return
        try:
            self.store.delete_points(self.index.collection, ids)
        except Exception:
            logger.exception("could not delete %d stale points", len(ids))

    def _forget_points(self, ids: list[str]) -> None:
        if not ids:
            return
        try:
            self.store.delete_points(self.index.collection, ids)
        except Exception:
            logger.exception("could not remove %d points of a failed batch", len(ids))

    def finish(self) -> SyncStats:
        self.flush()
        return self.stats
