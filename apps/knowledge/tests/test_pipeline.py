"""The ingestion pipeline end to end: real parser, chunker, embedder and (local-mode) Qdrant."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.errors import ApplicationError
from apps.events.models import Event, EventType
from apps.knowledge import runtime
from apps.knowledge.models import Chunk, Document, KnowledgeIndex, Source
from apps.knowledge.selectors import chunk_search
from apps.knowledge.services import (
    document_delete,
    source_create,
    source_delete,
    source_update,
)
from apps.knowledge.sync import source_sync
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_store")]

HANDBOOK = """# Acme handbook

## Refunds

Refunds are paid back to the original card within five working days. Anvils returned
damaged by the customer are refunded at half price.

## Shipping

Anvils ship by freight from Tucson. Delivery to Europe takes three weeks and costs 90 euros.

## Warranty

Every anvil carries a ten-year warranty against cracks, provided it was not dropped from a
cliff more than twice.
"""


@pytest.fixture
def embed_calls(monkeypatch):
    """Counts texts sent to the dense model by the pipeline."""
    embedder = runtime.get_embedder()
    calls: list[int] = []
    original = embedder.embed_documents

    def counting(texts, **kwargs):
        calls.append(len(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(embedder, "embed_documents", counting)
    return calls


def titles(results):
    return [r.title for r in results]


def test_ingest_text_makes_text_searchable(tenant_a):
    source = ingest_text(tenant=tenant_a.tenant, title="Acme handbook", text=HANDBOOK)
    assert source.status == Source.Status.SYNCED
    assert source.document_count == 1
    assert source.chunk_count >= 1
    results = chunk_search(tenant=tenant_a.tenant, query="how long does delivery to Europe take?")
    assert results, "the handbook should be found"
    top = results[0]
    assert "three weeks" in top.text
    assert top.rank == 1
    assert top.source_id == source.pk
    assert top.found_by in {"dense", "sparse", "both"}
    chunk = Chunk.objects.for_tenant(tenant_a.tenant).get(pk=top.chunk_id)
    assert chunk.document_id == top.document_id


def test_sync_records_event_and_active_index(tenant_a):
    source = ingest_text(tenant=tenant_a.tenant, title="Handbook", text=HANDBOOK)
    event = Event.objects.for_tenant(tenant_a.tenant).get(type=EventType.SOURCE_SYNCED)
    assert event.payload["source_id"] == str(source.public_id)
    index = KnowledgeIndex.objects.get(status=KnowledgeIndex.Status.READY)
    assert index.dimension == 384


def test_every_mode_finds_the_text(tenant_a):
    ingest_text(tenant=tenant_a.tenant, title="Handbook", text=HANDBOOK)
    for mode in ("hybrid", "dense", "sparse"):
        results = chunk_search(tenant=tenant_a.tenant, query="warranty cracks anvil", mode=mode)
        assert results and "warranty" in results[0].text.lower(), mode
        if mode != "hybrid":
            assert {r.found_by for r in results} == {mode}


def test_second_sync_of_unchanged_source_embeds_nothing(tenant_a, embed_calls):
    source = ingest_text(tenant=tenant_a.tenant, title="Handbook", text=HANDBOOK)
    assert sum(embed_calls) == source.chunk_count
    embed_calls.clear()
    stats = source_sync(source=source)
    assert embed_calls == []
    assert stats.chunks_embedded == 0
    assert stats.documents_unchanged == 1


def test_changing_one_section_reembeds_only_its_chunks(tenant_a, embed_calls, settings):
    # Small chunks, so each section is its own chunk.
    settings.KNOWLEDGE_CHUNK_MAX_TOKENS = 64
    source = ingest_text(tenant=tenant_a.tenant, title="Handbook", text=HANDBOOK)
    before = {c.content_hash: c.point_id for c in Chunk.objects.for_tenant(tenant_a.tenant).all()}
    assert len(before) >= 3
    embed_calls.clear()
    changed = HANDBOOK.replace("three weeks and costs 90 euros", "ten days and costs 120 euros")
    source_update(source=source, text=changed, sync=False)
    stats = source_sync(source=source)
    assert stats.chunks_embedded == sum(embed_calls) == 1
    after = {c.content_hash: c.point_id for c in Chunk.objects.for_tenant(tenant_a.tenant).all()}
    assert len(set(before) & set(after)) == len(before) - 1  # the other chunks were kept as is
    results = chunk_search(tenant=tenant_a.tenant, query="delivery to Europe", limit=3)
    assert "ten days" in results[0].text
    assert all("three weeks" not in r.text for r in results)
    document = Document.objects.for_tenant(tenant_a.tenant).get(source=source)
    assert document.version == 2


def test_deleted_source_disappears_from_search(tenant_a, knowledge_store):  # noqa: F811
    source = ingest_text(tenant=tenant_a.tenant, title="Handbook", text=HANDBOOK)
    ingest_text(tenant=tenant_a.tenant, title="Other", text="Our office cat is named Whiskers.")
    assert chunk_search(tenant=tenant_a.tenant, query="refund to original card")
    index = KnowledgeIndex.objects.get(status=KnowledgeIndex.Status.READY)
    tenant_id = str(tenant_a.tenant.public_id)
    assert knowledge_store.count(index.collection, tenant_id=tenant_id) > 1
    source_delete(source=source)
    results = chunk_search(tenant=tenant_a.tenant, query="refund to original card", limit=10)
    assert all(r.source_id != source.pk for r in results)
    assert all("Refunds" not in r.text for r in results)
    assert knowledge_store.count(index.collection, tenant_id=tenant_id) == 1


def test_deleted_document_disappears_from_search(tenant_a):
    source = ingest_text(tenant=tenant_a.tenant, title="Handbook", text=HANDBOOK)
    document = Document.objects.for_tenant(tenant_a.tenant).get(source=source)
    document_delete(document=document)
    assert chunk_search(tenant=tenant_a.tenant, query="warranty against cracks") == []


def test_failed_parse_keeps_previously_indexed_chunks(tenant_a):
    good = SimpleUploadedFile("guide.md", HANDBOOK.encode(), content_type="text/markdown")
    source = source_create(
        tenant=tenant_a.tenant, kind="upload", name="Guide", upload=good, sync=False
    )
    source_sync(source=source)
    source.refresh_from_db()
    assert source.status == Source.Status.SYNCED
    chunks_before = source.chunk_count
    # A PDF with valid magic bytes but a damaged body: the parser cannot read it.
    broken = SimpleUploadedFile("guide.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)
    source_update(source=source, upload=broken, sync=False)
    source_sync(source=source)
    source.refresh_from_db()
    assert source.status == Source.Status.FAILED
    assert "PDF" in source.error
    document = Document.objects.for_tenant(tenant_a.tenant).get(source=source)
    assert document.status == Document.Status.FAILED
    assert Chunk.objects.for_tenant(tenant_a.tenant).filter(document=document).count() == (
        chunks_before
    )
    results = chunk_search(tenant=tenant_a.tenant, query="refund to the original card")
    assert results and "original card" in results[0].text
    assert Event.objects.for_tenant(tenant_a.tenant).filter(type=EventType.SOURCE_FAILED).exists()


@pytest.mark.parametrize(
    "data,name,reason",
    [
        (b"   \n  ", "empty.txt", "empty"),
        (b"PK\x03\x04not really a zip", "file.zip", "Unsupported"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason(tenant_a, data, name, reason):
    upload = SimpleUploadedFile(name, data)
    with pytest.raises(ApplicationError, match=reason):
        source_create(tenant=tenant_a.tenant, kind="upload", name="Bad", upload=upload)


def test_oversized_upload_is_refused(tenant_a, settings):
    settings.KNOWLEDGE_UPLOAD_MAX_BYTES = 1024
    upload = SimpleUploadedFile("big.txt", b"x" * 2048)
    with pytest.raises(ApplicationError, match="too large"):
        source_create(tenant=tenant_a.tenant, kind="upload", name="Big", upload=upload)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"kind": "url", "url": "ftp://example.com/x"}, "http"),
        ({"kind": "url", "url": "javascript:alert(1)"}, "http"),
        ({"kind": "url"}, "URL is required"),
        ({"kind": "text", "text": "  "}, "empty"),
        ({"kind": "text", "text": "hi", "upload": SimpleUploadedFile("a.txt", b"a")}, "file"),
        ({"kind": "sitemap", "url": "https://example.com", "text": "x"}, "URL only"),
        ({"kind": "podcast"}, "Unknown source kind"),
        ({"kind": "text", "text": "hi", "access_groups": ["*"]}, "access group"),
    ],
)
def test_source_create_validates_kind_and_fields(tenant_a, kwargs, message):
    with pytest.raises(ApplicationError, match=message):
        source_create(tenant=tenant_a.tenant, name="S", **kwargs)


def test_source_create_queues_sync_after_commit(tenant_a, django_capture_on_commit_callbacks):
    from unittest import mock

    with (
        mock.patch("apps.knowledge.tasks.sync_source.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        source = source_create(tenant=tenant_a.tenant, kind="text", name="T", text="Hello there")
    delay.assert_called_once_with(tenant_a.tenant.pk, source.pk)
    assert source.status == Source.Status.QUEUED


# --- Isolation ------------------------------------------------------------------------------


SECRET = "The vault combination for Acme's Tucson warehouse is 31-17-42, rotated every March."


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_other_tenant_never_retrieves_the_text(tenant_a, tenant_b, mode):
    ingest_text(tenant=tenant_a.tenant, title="Vault", text=SECRET)
    ingest_text(tenant=tenant_b.tenant, title="Bikes", text="Bluebird bikes have steel frames.")
    for query in (SECRET, "vault combination", "Tucson warehouse 31-17-42"):
        for groups in (None, [], ["staff"]):
            results = chunk_search(
                tenant=tenant_b.tenant, query=query, access_groups=groups, mode=mode, limit=20
            )
            assert all("vault" not in r.text.lower() for r in results), (query, groups)
            assert all(r.title != "Vault" for r in results)
    own = chunk_search(tenant=tenant_a.tenant, query=SECRET, mode=mode)
    assert own and own[0].title == "Vault"


def test_search_without_tenant_is_refused():
    from apps.core.errors import TenantScopeError

    with pytest.raises(TenantScopeError):
        chunk_search(tenant=None, query="anything")


def test_restricted_document_needs_the_right_group(tenant_a):
    ingest_text(
        tenant=tenant_a.tenant,
        title="Reseller prices",
        text="Resellers pay 40 percent of the list price for the Model X anvil.",
        access_groups=["resellers"],
    )
    ingest_text(tenant=tenant_a.tenant, title="Public prices", text="The Model X anvil costs 900.")
    query = "what do resellers pay for the Model X anvil"
    for groups in (None, [], ["staff"]):
        found = titles(chunk_search(tenant=tenant_a.tenant, query=query, access_groups=groups))
        assert "Reseller prices" not in found, groups
        assert "Public prices" in found
    found = titles(chunk_search(tenant=tenant_a.tenant, query=query, access_groups=["resellers"]))
    assert found[0] == "Reseller prices"
    assert "Public prices" in found


def test_changing_access_groups_updates_what_is_visible(tenant_a):
    source = ingest_text(
        tenant=tenant_a.tenant, title="Prices", text="Model X anvil costs 900 for everyone."
    )
    assert chunk_search(tenant=tenant_a.tenant, query="Model X anvil price")
    source_update(source=source, access_groups=["staff"], sync=False)
    source_sync(source=source)
    assert chunk_search(tenant=tenant_a.tenant, query="Model X anvil price") == []
    staff = chunk_search(
        tenant=tenant_a.tenant, query="Model X anvil price", access_groups=["staff"]
    )
    assert staff


def test_resync_due_sources_queues_only_sources_whose_interval_passed(tenant_a):
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from apps.knowledge.tasks import resync_due_sources

    now = timezone.now()
    due = ingest_text(tenant=tenant_a.tenant, title="Due", text="Due text.")
    fresh = ingest_text(tenant=tenant_a.tenant, title="Fresh", text="Fresh text.")
    manual = ingest_text(tenant=tenant_a.tenant, title="Manual", text="Manual text.")
    sources = Source.objects.for_tenant(tenant_a.tenant)
    sources.filter(pk=due.pk).update(
        schedule_minutes=10, last_attempt_at=now - timedelta(minutes=11)
    )
    sources.filter(pk=fresh.pk).update(schedule_minutes=10, last_attempt_at=now)
    sources.filter(pk=manual.pk).update(last_attempt_at=now - timedelta(days=9))
    with mock.patch("apps.knowledge.tasks.sync_source.delay") as delay:
        assert resync_due_sources() == 1
    delay.assert_called_once_with(tenant_a.tenant.pk, due.pk)
    assert sources.get(pk=due.pk).status == Source.Status.QUEUED
    assert sources.get(pk=fresh.pk).status == Source.Status.SYNCED


def test_new_section_on_top_embeds_only_it_and_moves_the_others(tenant_a, embed_calls, settings):
    settings.KNOWLEDGE_CHUNK_MAX_TOKENS = 64
    source = ingest_text(tenant=tenant_a.tenant, title="Handbook", text=HANDBOOK)
    before = dict(Chunk.objects.for_tenant(tenant_a.tenant).values_list("point_id", "position"))
    embed_calls.clear()
    changed = HANDBOOK.replace("## Refunds", "## Opening hours\n\nWe open at 8am.\n\n## Refunds")
    source_update(source=source, text=changed, sync=False)
    source_sync(source=source)
    assert sum(embed_calls) == 1
    after = dict(Chunk.objects.for_tenant(tenant_a.tenant).values_list("point_id", "position"))
    kept = set(before) & set(after)
    assert len(kept) == len(before)
    assert all(after[p] == before[p] + 1 for p in kept if before[p] > 0)
    top = chunk_search(tenant=tenant_a.tenant, query="what time do you open", limit=1)[0]
    assert "8am" in top.text
