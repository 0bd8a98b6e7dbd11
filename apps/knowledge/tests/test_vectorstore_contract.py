"""One contract, two engines: every VectorStore backend must pass the same tests.

Backends: Qdrant Edge on disk, and qdrant-client local mode on disk (the server code path
minus the network). Tenant isolation is tested with identical texts across tenants, so a
missing filter would show up as a top-ranked foreign hit.
"""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest

from apps.knowledge.embeddings import SparseEncoder
from apps.knowledge.vectorstore import (
    ChunkPoint,
    CollectionNotFoundError,
    ScopeRequiredError,
    SearchScope,
    SparseVector,
    VectorStore,
    VectorStoreError,
    chunk_payload,
)
from apps.knowledge.vectorstore.client import QdrantClientStore
from apps.knowledge.vectorstore.edge import EdgeVectorStore
from apps.knowledge.vectorstore.fusion import HybridFusion, fuse

DIM = 384
SPARSE = SparseEncoder()

DOCS = {
    "refunds": "Refunds are issued to the original card within five business days.",
    "password": "To reset your password, click 'Forgot password' on the login page.",
    "invoices": "Invoices can be downloaded as PDF from the billing dashboard.",
    "shipping": "Orders ship from our Berlin warehouse within 24 hours.",
}
SECRET_B = "Tenant B internal escalation phone number is 555-0199 for VIP customers."


def make_store(kind: str, path) -> VectorStore:
    if kind == "edge":
        return EdgeVectorStore(path / "edge", linger_s=60)
    return QdrantClientStore(path=str(path / "local"))


@pytest.fixture(params=["edge", "client-local"])
def store(request, tmp_path):
    s = make_store(request.param, tmp_path)
    s.kind = request.param
    yield s
    s.close()


@pytest.fixture(scope="module")
def vectors(embedder):
    texts = [*DOCS.values(), SECRET_B]
    return dict(zip(texts, embedder.embed_documents(texts), strict=True))


def point(vectors, *, tenant, doc, text, groups=None, source="src-1") -> ChunkPoint:
    return ChunkPoint(
        id=str(uuid.uuid4()),
        dense=vectors[text].tolist(),
        sparse=SPARSE.encode_document(text),
        payload=chunk_payload(
            tenant_id=tenant,
            source_id=source,
            document_id=doc,
            chunk_id=f"{doc}-0",
            access_groups=groups,
            text=text,
            title=doc.title(),
            url=f"https://help.example/{doc}",
            heading_path=("Help", doc),
        ),
    )


@pytest.fixture
def loaded(store, vectors):
    """Tenants A and B with the same public docs; B also has a secret one."""
    store.ensure_collection("kb_v1", dense_dim=DIM)
    points = []
    for tenant in ("tenant-a", "tenant-b"):
        for doc, text in DOCS.items():
            points.append(point(vectors, tenant=tenant, doc=doc, text=text))
    points.append(point(vectors, tenant="tenant-b", doc="secret", text=SECRET_B))
    store.upsert("kb_v1", points)
    return store


def search(store, embedder, text, *, tenant="tenant-a", groups=frozenset(), mode="hybrid", **kw):
    return store.search(
        kw.pop("collection", "kb_v1"),
        scope=SearchScope(tenant_id=tenant, access_groups=groups),
        dense=embedder.embed_query(text).tolist(),
        sparse=SPARSE.encode_query(text),
        mode=mode,
        **kw,
    )


# --------------------------------------------------------------------------- collections


def test_ensure_collection_is_idempotent(store):
    assert store.ensure_collection("kb_v1", dense_dim=DIM) is True
    assert store.ensure_collection("kb_v1", dense_dim=DIM) is False
    assert store.list_collections() == ["kb_v1"]
    with pytest.raises(VectorStoreError):
        store.ensure_collection("kb_v1", dense_dim=DIM + 1)
    store.delete_collection("kb_v1")
    assert store.list_collections() == []
    store.delete_collection("kb_v1")  # no-op


def test_invalid_names_are_rejected(store):
    for bad in ("../etc", "a/b", "", ".hidden"):
        with pytest.raises(ValueError):
            store.ensure_collection(bad, dense_dim=DIM)


def test_unknown_collection(store):
    with pytest.raises(CollectionNotFoundError):
        store.upsert(
            "missing",
            [point({"x": np.zeros(DIM, dtype=np.float32)}, tenant="t", doc="d", text="x")],
        )


# --------------------------------------------------------------------------- search


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_search_modes_rank_the_relevant_chunk_first(loaded, embedder, mode):
    hits = search(loaded, embedder, "how many days until my refund arrives", mode=mode)
    assert hits, mode
    top = hits[0]
    assert top.payload["document_id"] == "refunds"
    assert top.payload["tenant_id"] == "tenant-a"
    assert top.payload["heading_path"] == ["Help", "refunds"]
    assert top.payload["url"] == "https://help.example/refunds"
    uuid.UUID(top.id)
    expected = {"hybrid": {"dense", "sparse"}, "dense": {"dense"}, "sparse": {"sparse"}}[mode]
    assert top.found_by == expected
    assert all(h.found_by <= {"dense", "sparse"} and h.found_by for h in hits)


def test_hybrid_reports_single_retriever_hits(loaded, embedder):
    hits = search(loaded, embedder, "refunds", limit=4)
    by_doc = {h.payload["document_id"]: h.found_by for h in hits}
    assert by_doc["refunds"] == {"dense", "sparse"}
    # Docs without the word "refunds" can only come from the dense side.
    assert all(f == {"dense"} for d, f in by_doc.items() if d != "refunds")


def test_hybrid_with_stopword_only_query_ranks_by_dense_alone(loaded, embedder):
    hits = search(loaded, embedder, "how is it", mode="hybrid")
    assert hits and all(h.found_by == {"dense"} for h in hits)
    dense = search(loaded, embedder, "how is it", mode="dense")
    assert [h.id for h in hits] == [h.id for h in dense]
    assert search(loaded, embedder, "how is it", mode="sparse") == []


@pytest.mark.parametrize(
    "fusion",
    [HybridFusion(), HybridFusion("rrf", dense_weight=0.8, rrf_k=60), HybridFusion("rrf", 0.5, 1)],
)
@pytest.mark.parametrize("groups", [frozenset(), None])
def test_hybrid_is_the_fusion_of_the_two_separate_searches(loaded, embedder, fusion, groups):
    # One engine call for both retrievers must rank exactly like two searches fused by hand.
    for text in ("refund to my card", "download invoice pdf", SECRET_B):
        kw = {"groups": groups, "limit": 3}
        hybrid = search(loaded, embedder, text, prefetch_limit=5, fusion=fusion, **kw)
        dense = search(loaded, embedder, text, mode="dense", groups=groups, limit=5)
        sparse = search(loaded, embedder, text, mode="sparse", groups=groups, limit=5)
        expected = fuse(dense, sparse, limit=3, fusion=fusion)
        assert [(h.id, h.found_by, h.payload) for h in hybrid] == [
            (h.id, h.found_by, h.payload) for h in expected
        ]
        assert [h.score for h in hybrid] == pytest.approx([h.score for h in expected])
        assert all(h.payload["tenant_id"] == "tenant-a" for h in hybrid)


def test_limit_is_respected(loaded, embedder):
    assert len(search(loaded, embedder, "billing", limit=2)) == 2


# --------------------------------------------------------------------------- isolation


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
@pytest.mark.parametrize("groups", [frozenset(), frozenset({"*", "admins"}), None])
def test_tenant_never_sees_another_tenants_points(loaded, embedder, mode, groups):
    # The exact text of B's secret, as A, asking for everything: nothing of B's may appear.
    hits = search(loaded, embedder, SECRET_B, mode=mode, groups=groups, limit=100)
    assert all(h.payload["tenant_id"] == "tenant-a" for h in hits)
    assert SECRET_B not in {h.payload["text"] for h in hits}
    # Sanity: the same query as B does find it, so the query itself works.
    hits_b = search(loaded, embedder, SECRET_B, tenant="tenant-b", mode=mode, groups=groups)
    assert hits_b[0].payload["text"] == SECRET_B


def test_unknown_tenant_gets_nothing(loaded, embedder):
    assert search(loaded, embedder, DOCS["refunds"], tenant="tenant-z", limit=50) == []


def test_search_without_scope_is_impossible(loaded, embedder):
    dense = embedder.embed_query("refund").tolist()
    for bad in (None, "tenant-a", {"tenant_id": "tenant-a"}):
        with pytest.raises(ScopeRequiredError):
            loaded.search("kb_v1", scope=bad, dense=dense, mode="dense")
    with pytest.raises(TypeError):
        loaded.search("kb_v1", dense=dense, mode="dense")  # scope is a required keyword
    for empty in ("", "   "):
        with pytest.raises(ScopeRequiredError):
            SearchScope(tenant_id=empty)


def test_access_groups(store, vectors, embedder):
    store.ensure_collection("kb_v1", dense_dim=DIM)
    text = DOCS["refunds"]
    store.upsert(
        "kb_v1",
        [
            point(vectors, tenant="t", doc="public", text=text),
            point(vectors, tenant="t", doc="sales-only", text=text, groups=["sales"]),
            point(vectors, tenant="t", doc="hr-only", text=text, groups=["hr", "execs"]),
        ],
    )

    def visible(groups):
        hits = search(store, embedder, text, tenant="t", groups=groups, limit=10)
        return {h.payload["document_id"] for h in hits}

    assert visible(frozenset()) == {"public"}
    assert visible(frozenset({"sales"})) == {"public", "sales-only"}
    assert visible(frozenset({"execs", "marketing"})) == {"public", "hr-only"}
    assert visible(None) == {"public", "sales-only", "hr-only"}


# --------------------------------------------------------------------------- writes


def test_delete_by_document_is_tenant_scoped(loaded, embedder):
    assert loaded.count("kb_v1") == 9
    assert loaded.count("kb_v1", tenant_id="tenant-a", document_id="refunds") == 1
    loaded.delete_by_filter("kb_v1", tenant_id="tenant-a", document_id="refunds")
    assert loaded.count("kb_v1", tenant_id="tenant-a", document_id="refunds") == 0
    # Same document_id in another tenant is untouched.
    assert loaded.count("kb_v1", tenant_id="tenant-b", document_id="refunds") == 1
    hits = search(loaded, embedder, "refund five business days", limit=10)
    assert "refunds" not in {h.payload["document_id"] for h in hits}


def test_delete_by_source_and_tenant(loaded):
    loaded.delete_by_filter("kb_v1", tenant_id="tenant-b", source_id="src-1")
    assert loaded.count("kb_v1", tenant_id="tenant-b") == 0
    assert loaded.count("kb_v1", tenant_id="tenant-a") == 4
    with pytest.raises(ScopeRequiredError):
        loaded.delete_by_filter("kb_v1", tenant_id="", document_id="refunds")


def test_delete_points_and_upsert_replaces(loaded, vectors, embedder):
    hits = search(loaded, embedder, "password reset", limit=1)
    loaded.delete_points("kb_v1", [hits[0].id])
    assert loaded.count("kb_v1", tenant_id="tenant-a") == 3
    # Upserting an existing id replaces payload and vectors.
    p = point(vectors, tenant="tenant-a", doc="invoices", text=DOCS["invoices"])
    loaded.upsert("kb_v1", [p])
    replaced = ChunkPoint(
        id=p.id, dense=p.dense, sparse=p.sparse, payload={**p.payload, "version": 2}
    )
    loaded.upsert("kb_v1", [replaced])
    assert loaded.count("kb_v1", tenant_id="tenant-a") == 4
    hit = next(h for h in search(loaded, embedder, DOCS["invoices"], limit=5) if h.id == p.id)
    assert hit.payload["version"] == 2


def test_upsert_validates_points(store, vectors):
    store.ensure_collection("kb_v1", dense_dim=DIM)
    good = point(vectors, tenant="t", doc="d", text=DOCS["refunds"])
    for payload in (
        {**good.payload, "tenant_id": ""},
        {k: v for k, v in good.payload.items() if k != "access_groups"},
    ):
        with pytest.raises(ValueError):
            store.upsert("kb_v1", [ChunkPoint(good.id, good.dense, good.sparse, payload)])
    with pytest.raises(ValueError):
        store.upsert("kb_v1", [ChunkPoint("not-a-uuid", good.dense, good.sparse, good.payload)])
    with pytest.raises(ValueError):
        store.upsert("kb_v1", [ChunkPoint(good.id, good.dense[:10], good.sparse, good.payload)])
    assert store.count("kb_v1") == 0


def test_data_survives_reopen(loaded, tmp_path):
    loaded.close()
    reopened = make_store(loaded.kind, tmp_path)
    try:
        assert reopened.count("kb_v1", tenant_id="tenant-a") == 4
    finally:
        reopened.close()


# --------------------------------------------------------------------------- aliases


def test_alias_switch_and_search_through_alias(store, vectors, embedder):
    store.ensure_collection("kb_v1", dense_dim=DIM)
    store.ensure_collection("kb_v2", dense_dim=DIM)
    store.upsert("kb_v1", [point(vectors, tenant="t", doc="old", text=DOCS["refunds"])])
    store.upsert("kb_v2", [point(vectors, tenant="t", doc="new", text=DOCS["refunds"])])
    assert store.get_alias_target("kb") is None

    store.switch_alias("kb", "kb_v1")
    assert store.get_alias_target("kb") == "kb_v1"
    hits = search(store, embedder, "refund", tenant="t", collection="kb")
    assert [h.payload["document_id"] for h in hits] == ["old"]

    store.switch_alias("kb", "kb_v2")
    assert store.get_alias_target("kb") == "kb_v2"
    hits = search(store, embedder, "refund", tenant="t", collection="kb")
    assert [h.payload["document_id"] for h in hits] == ["new"]
    assert store.list_collections() == ["kb_v1", "kb_v2"]  # aliases are not collections

    store.delete_collection("kb_v1")  # old generation gone, alias unaffected
    assert (
        search(store, embedder, "refund", tenant="t", collection="kb")[0].payload["document_id"]
        == "new"
    )
    with pytest.raises(CollectionNotFoundError):
        store.switch_alias("kb", "kb_v1")
    store.delete_alias("kb")
    assert store.get_alias_target("kb") is None


def test_alias_switch_is_atomic_for_concurrent_readers(store, vectors, embedder):
    store.ensure_collection("kb_v1", dense_dim=DIM)
    store.ensure_collection("kb_v2", dense_dim=DIM)
    store.upsert("kb_v1", [point(vectors, tenant="t", doc="old", text=DOCS["refunds"])])
    store.upsert("kb_v2", [point(vectors, tenant="t", doc="new", text=DOCS["refunds"])])
    store.switch_alias("kb", "kb_v1")
    dense = embedder.embed_query("refund").tolist()
    sparse = SPARSE.encode_query("refund")
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                hits = store.search(
                    "kb", scope=SearchScope(tenant_id="t"), dense=dense, sparse=sparse
                )
                seen.append(",".join(h.payload["document_id"] for h in hits))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(20):
            store.switch_alias("kb", "kb_v2" if i % 2 == 0 else "kb_v1")
    finally:
        stop.set()
        thread.join()
    assert not errors
    # Every read saw exactly one generation: never empty, never a mix.
    assert seen and set(seen) <= {"old", "new"}


def test_alias_cannot_shadow_a_collection(store):
    store.ensure_collection("kb_v1", dense_dim=DIM)
    store.ensure_collection("kb_v2", dense_dim=DIM)
    with pytest.raises(VectorStoreError):
        store.switch_alias("kb_v2", "kb_v1")


# --------------------------------------------------------------------------- edge segments


def test_edge_writes_optimize_segments_and_isolation_holds_on_them(tmp_path):
    # Past ~6.7k points (Qdrant's 10 MB indexing threshold at 384 dims) the optimizer turns
    # the appendable segment into an indexed one; edge has no background optimizer, so the
    # write itself must have run it. Searches must stay tenant-filtered on that segment.
    store = EdgeVectorStore(tmp_path / "edge", linger_s=60)
    try:
        store.ensure_collection("kb_v1", dense_dim=DIM)
        vectors = np.random.default_rng(3).standard_normal((8000, DIM)).astype(np.float32)
        points = [
            ChunkPoint(
                id=str(uuid.UUID(int=i + 1)),
                dense=vectors[i].tolist(),
                sparse=SparseVector([i % 49, 1000 + i], [1.0, 1.0]),  # shared term + own term
                payload=chunk_payload(
                    tenant_id=f"tenant-{i % 2}",
                    source_id="s",
                    document_id=f"d{i}",
                    chunk_id=str(i),
                    access_groups=None,
                    text=f"chunk {i}",
                ),
            )
            for i in range(len(vectors))
        ]
        for start in range(0, len(points), 1000):
            store.upsert("kb_v1", points[start : start + 1000])
        assert store.optimize("kb_v1") is False  # nothing left: the writes optimized
        for i in (0, 1, 4001, 7998):  # tenant-0 asks with tenant-1's exact vectors, and back
            other = f"tenant-{1 - i % 2}"
            for mode in ("hybrid", "dense", "sparse"):
                hits = store.search(
                    "kb_v1",
                    scope=SearchScope(tenant_id=other),
                    dense=points[i].dense,
                    sparse=points[i].sparse,
                    mode=mode,
                    limit=20,
                )
                assert hits and all(h.payload["tenant_id"] == other for h in hits), mode
            own = store.search(
                "kb_v1",
                scope=SearchScope(tenant_id=f"tenant-{i % 2}"),
                dense=points[i].dense,
                mode="dense",
            )
            assert own[0].id == points[i].id
    finally:
        store.close()
