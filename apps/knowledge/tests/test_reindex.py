"""Zero-downtime reindex: build a new collection, switch the alias, retire the old one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from apps.core import realtime
from apps.knowledge import runtime
from apps.knowledge.index_lifecycle import index_rebuild
from apps.knowledge.models import Chunk, KnowledgeIndex
from apps.knowledge.selectors import chunk_search
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_store")]

DOCS = {
    "Shipping": "Anvils ship by freight from Tucson. Delivery to Europe takes three weeks.",
    "Refunds": "Refunds are paid back to the original card within five working days.",
    "Warranty": "Every anvil carries a ten-year warranty against cracks.",
    "Care": "Oil your anvil monthly with linseed oil to keep rust away.",
    "Colours": "Anvils come in black, red and a limited matte green edition.",
}


@pytest.fixture
def corpus(tenant_a, tenant_b):
    for title, text in DOCS.items():
        ingest_text(tenant=tenant_a.tenant, title=title, text=text)
    ingest_text(tenant=tenant_b.tenant, title="Bikes", text="Bluebird bikes have steel frames.")
    return KnowledgeIndex.objects.get(status=KnowledgeIndex.Status.READY)


def alias_target() -> str | None:
    return runtime.get_store().get_alias_target(django_settings.QDRANT_COLLECTION)


def test_reindex_builds_new_collection_then_switches(tenant_a, tenant_b, corpus, monkeypatch):
    old = corpus
    assert alias_target() == old.collection
    seen_during_build: list[tuple[str | None, int]] = []
    statuses: list[str] = []
    documents_done: list[int] = []
    original = realtime.send_reindex_progress

    def spy(**kwargs):
        # While the new collection fills up, search answers from the old one.
        statuses.append(kwargs["status"])
        if kwargs["status"] == KnowledgeIndex.Status.BUILDING and "tenant_id" not in kwargs:
            documents_done.append(kwargs["progress"]["documents_done"])
        if kwargs["status"] == KnowledgeIndex.Status.BUILDING:
            results = chunk_search(tenant=tenant_a.tenant, query="delivery to Europe")
            seen_during_build.append((alias_target(), len(results)))
        original(**kwargs)

    monkeypatch.setattr(realtime, "send_reindex_progress", spy)
    new = index_rebuild(chunking={"max_tokens": 64})
    assert new.status == KnowledgeIndex.Status.READY, new.error
    assert new.chunking["max_tokens"] == 64
    assert len(seen_during_build) > 3
    assert all(target == old.collection and n > 0 for target, n in seen_during_build)
    assert statuses[-1] == KnowledgeIndex.Status.READY
    # The progress bar moves document by document while the build runs.
    assert documents_done == sorted(documents_done)
    assert documents_done[0] == 0 and documents_done[-1] == len(DOCS) + 1
    assert any(0 < n < len(DOCS) + 1 for n in documents_done)
    old.refresh_from_db()
    assert old.status == KnowledgeIndex.Status.RETIRED
    assert alias_target() == new.collection
    assert old.collection not in runtime.get_store().list_collections()
    assert not Chunk.objects.unscoped().filter(index=old).exists()
    assert new.documents_done == new.documents_total == len(DOCS) + 1
    results = chunk_search(tenant=tenant_a.tenant, query="delivery to Europe")
    assert results[0].title == "Shipping"
    assert chunk_search(tenant=tenant_b.tenant, query="steel frames")[0].title == "Bikes"
    assert all(r.title != "Bikes" for r in chunk_search(tenant=tenant_a.tenant, query="bikes"))


def test_reindex_failing_half_way_leaves_old_collection_serving(tenant_a, corpus, settings):
    old = corpus
    settings.KNOWLEDGE_EMBED_BATCH_SIZE = 1
    embedder = runtime.get_embedder()
    original = embedder.embed_documents
    calls = []

    def flaky(texts, **kwargs):
        calls.append(len(texts))
        if len(calls) > 2:
            raise RuntimeError("GPU fell off the bus")
        return original(texts, **kwargs)

    embedder.embed_documents = flaky
    try:
        failed = index_rebuild()
    finally:
        del embedder.embed_documents
    assert len(calls) == 3
    assert failed.status == KnowledgeIndex.Status.FAILED
    assert "GPU fell off the bus" in failed.error
    old.refresh_from_db()
    assert old.status == KnowledgeIndex.Status.READY
    assert alias_target() == old.collection
    assert failed.collection not in runtime.get_store().list_collections()
    assert not Chunk.objects.unscoped().filter(index=failed).exists()
    results = chunk_search(tenant=tenant_a.tenant, query="refund to the original card")
    assert results and results[0].title == "Refunds"
    # The next reindex is not blocked by the failed one.
    assert index_rebuild().status == KnowledgeIndex.Status.READY


def test_build_left_by_a_killed_worker_is_marked_failed(corpus):
    stale = KnowledgeIndex.objects.create(
        collection="supportai_chunks_killed",
        embedding_model="x",
        dimension=384,
        status=KnowledgeIndex.Status.BUILDING,
    )
    KnowledgeIndex.objects.filter(pk=stale.pk).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    index = index_rebuild()
    stale.refresh_from_db()
    assert stale.status == KnowledgeIndex.Status.FAILED
    assert "Interrupted" in stale.error
    assert index.status == KnowledgeIndex.Status.READY


def test_reindex_progress_per_tenant_shows_only_own_counts(tenant_a, tenant_b, corpus, monkeypatch):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(realtime, "send", lambda group, payload: sent.append((group, payload)))
    index_rebuild()
    a_group = realtime.tenant_group(tenant_a.tenant.pk)
    b_group = realtime.tenant_group(tenant_b.tenant.pk)
    a_events = [p for g, p in sent if g == a_group and p["type"] == "reindex.progress"]
    b_events = [p for g, p in sent if g == b_group and p["type"] == "reindex.progress"]
    assert a_events[-1]["documents_total"] == len(DOCS)
    assert b_events[-1]["documents_total"] == 1
    assert a_events[-1]["percent"] == 100
    assert all("chunks_total" not in p for p in a_events + b_events)
    admin = [p for g, p in sent if g == realtime.knowledge_admin_group()]
    assert admin[-1]["documents_done"] == len(DOCS) + 1


def test_tenant_reindex_reembeds_in_place(
    tenant_a, tenant_b, corpus, django_capture_on_commit_callbacks
):
    before_a = set(Chunk.objects.for_tenant(tenant_a.tenant).values_list("point_id", flat=True))
    before_b = set(Chunk.objects.for_tenant(tenant_b.tenant).values_list("point_id", flat=True))
    # Old points are removed once the new rows are committed.
    with django_capture_on_commit_callbacks(execute=True):
        index = index_rebuild(tenant_id=tenant_a.tenant.pk)
    assert index.pk == corpus.pk
    after_a = set(Chunk.objects.for_tenant(tenant_a.tenant).values_list("point_id", flat=True))
    assert len(after_a) == len(before_a) and not (after_a & before_a)
    assert set(Chunk.objects.for_tenant(tenant_b.tenant).values_list("point_id", flat=True)) == (
        before_b
    )
    tenant_id = str(tenant_a.tenant.public_id)
    assert runtime.get_store().count(corpus.collection, tenant_id=tenant_id) == len(after_a)
    assert chunk_search(tenant=tenant_a.tenant, query="linseed oil")[0].title == "Care"
