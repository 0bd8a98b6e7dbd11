"""Dense (sentence-transformers) and sparse (BM25-style) encoders for chunks and queries.

The dense model is loaded lazily, once per process, from a local directory: nothing is ever
downloaded at runtime. Queries run on ONNX Runtime (default) or PyTorch (`EMBEDDING_BACKEND`),
document batches on PyTorch (default) or ONNX Runtime (`EMBEDDING_DOCUMENT_BACKEND`): on CPU,
ONNX Runtime embeds one short query faster and PyTorch a batch of chunks faster, and both give
the same vectors.
The sparse encoder is pure Python and deterministic, so document vectors
computed by the worker and query vectors computed by the web process always agree.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol

import numpy as np
from django.conf import settings

from apps.knowledge.chunking import default_model_path
from apps.knowledge.vectorstore.base import SparseVector

EMBEDDING_BACKENDS = ("onnx", "torch")
# Query vectors remembered per embedder (384 floats each: about 0.4 MB in all).
QUERY_CACHE_SIZE = 256


class Encoder(Protocol):
    """What a backend gives: unit vectors for texts, and the model's two sizes."""

    dimension: int
    max_seq_length: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray: ...


class TorchEncoder:
    """sentence-transformers on PyTorch, as the model was trained."""

    def __init__(self, model_path: str, *, device: str = "cpu") -> None:
        # Heavy optional library (PyTorch), loaded only when this backend is chosen.
        from sentence_transformers import SentenceTransformer

        self.model: SentenceTransformer = SentenceTransformer(
            model_path, device=device, local_files_only=True
        )
        dimension = self.model.get_embedding_dimension()
        if dimension is None:  # pragma: no cover - only for exotic models
            raise RuntimeError("model does not report its embedding dimension")
        self.dimension = int(dimension)
        self.max_seq_length = int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class DenseEmbedder:
    """Normalised float32 sentence embeddings from a local sentence-transformers model.

    `backend` (queries) and `document_backend` (document batches) are each "onnx" (ONNX
    Runtime on an fp32 export made once per model and cached under `cache_dir`;
    apps/knowledge/onnx_embeddings.py) or "torch" (sentence-transformers itself). Both give the
    same vectors (cosine ≥ 0.9999, checked when the export is made), so indexes built with one
    serve queries embedded with the other. Defaults: `EMBEDDING_BACKEND` and
    `EMBEDDING_DOCUMENT_BACKEND`; a process loads only the backends it uses.

    Thread-safe; the model loads on first use (a few seconds, ~90 MB RAM for MiniLM), so
    importing this module or constructing the object is cheap.
    """

    def __init__(
        self,
        *,
        model_path: str | None = None,
        device: str = "cpu",
        backend: str | None = None,
        document_backend: str | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.model_path = model_path or default_model_path()
        self.device = device
        self.backend = backend or settings.EMBEDDING_BACKEND
        self.document_backend = document_backend or settings.EMBEDDING_DOCUMENT_BACKEND
        for name in (self.backend, self.document_backend):
            if name not in EMBEDDING_BACKENDS:
                raise ValueError(f"backend must be one of {', '.join(EMBEDDING_BACKENDS)}")
        self.cache_dir = Path(cache_dir or Path(settings.DATA_DIR) / "embeddings")
        self._encoders: dict[str, Encoder] = {}
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, Future[np.ndarray]] = OrderedDict()

    @property
    def encoder(self) -> Encoder:
        """The query backend, loaded on first use."""
        return self._encoder_for(self.backend)

    @property
    def document_encoder(self) -> Encoder:
        """The document-batch backend, loaded on first use (the same object when the two
        settings name the same backend)."""
        return self._encoder_for(self.document_backend)

    def _encoder_for(self, backend: str) -> Encoder:
        # Double-checked locking: each backend loads once even under concurrent calls.
        encoder = self._encoders.get(backend)
        if encoder is None:
            with self._load_lock:
                encoder = self._encoders.get(backend)
                if encoder is None:
                    encoder = self._encoders[backend] = self._load(backend)
        return encoder

    def _load(self, backend: str) -> Encoder:
        # Offline by construction: the path is a local directory, and this guards against any
        # hub lookup sentence-transformers might attempt.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if backend == "torch":
            return TorchEncoder(self.model_path, device=self.device)
        # Heavy optional library (ONNX Runtime), loaded only when this backend is chosen.
        from apps.knowledge.onnx_embeddings import OnnxEncoder, ensure_export

        return OnnxEncoder(ensure_export(self.model_path, self.cache_dir))

    @property
    def model_name(self) -> str:
        """Stable identifier stored with vectors so a model change forces a reindex."""
        path = Path(self.model_path)
        # Packaged models live in ".../<package>/model"; the package name is the useful part.
        return path.parent.name if path.name == "model" else path.name

    @property
    def dimension(self) -> int:
        """Embedding size (384 for all-MiniLM-L6-v2)."""
        return self.encoder.dimension

    @property
    def max_seq_length(self) -> int:
        """Tokens the model reads before truncating (the chunker stays below this)."""
        return self.encoder.max_seq_length

    def embed_documents(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Embed chunk texts; returns an ``(n, dimension)`` float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.document_encoder.encode(texts, batch_size=batch_size)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns a read-only ``(dimension,)`` float32 unit vector.

        Recent queries are remembered, and a query being embedded by another thread is waited
        for rather than embedded twice: the assistant starts embedding the question while it
        stores the answer's row, and retrieval and curated answers then share that vector.
        """
        with self._lock:
            future = self._queries.get(text)
            owner = future is None
            if owner:
                future = self._queries[text] = Future()
                while len(self._queries) > QUERY_CACHE_SIZE:
                    self._queries.popitem(last=False)
            else:
                self._queries.move_to_end(text)
        if owner:
            try:
                vector = self.encoder.encode([text], batch_size=1)[0]
            except BaseException as exc:
                with self._lock:
                    self._queries.pop(text, None)
                future.set_exception(exc)
                raise
            vector.flags.writeable = False
            future.set_result(vector)
        return future.result()


_DEFAULT_EMBEDDER: DenseEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def get_dense_embedder() -> DenseEmbedder:
    """Process-wide embedder for the configured model (one model copy per process)."""
    global _DEFAULT_EMBEDDER
    with _DEFAULT_LOCK:
        if _DEFAULT_EMBEDDER is None:
            _DEFAULT_EMBEDDER = DenseEmbedder()
        return _DEFAULT_EMBEDDER


# --------------------------------------------------------------------------- sparse


# Deliberately short: BM25's IDF already down-weights common words; this only removes the
# glue words that would otherwise dominate short queries.
_STOPWORDS_TEXT = """
a an and are as at be but by for from has have how i if in into is it its me my of on or our
so than that the their them then there these they this to was we were what when where which
who why will with you your
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORDS_TEXT.split())

_WORD_RE = re.compile(r"\w+", re.UNICODE)


class SparseEncoder:
    """BM25 term-frequency vectors; IDF is applied by Qdrant (sparse ``modifier=IDF``).

    Document value per term: ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``.
    Queries weigh every unique term 1, so the score is the sum of IDF-weighted document TFs.
    Term ids are the first 4 bytes of blake2b(term): stable across processes and releases
    (unlike ``hash()``), collisions are negligible at 2**32.
    """

    def __init__(
        self, *, k1: float = 1.2, b: float = 0.75, avg_len: float = 120.0, min_len: int = 1
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1 or avg_len <= 0:
            raise ValueError("invalid BM25 parameters")
        self.k1 = k1
        self.b = b
        # Fixed rather than corpus-derived so vectors never need recomputing as the corpus
        # grows; ~120 content words is typical for a 256-wordpiece chunk after stopwords.
        self.avg_len = avg_len
        self.min_len = min_len

    def tokenize(self, text: str) -> list[str]:
        """Lowercased, NFKC-normalised unicode words minus stopwords."""
        norm = unicodedata.normalize("NFKC", text).casefold()
        return [
            tok
            for tok in _WORD_RE.findall(norm)
            if len(tok) >= self.min_len and tok not in STOPWORDS and tok != "_"
        ]

    @staticmethod
    def term_id(term: str) -> int:
        """Stable unsigned 32-bit id of a term."""
        return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "big")

    def encode_document(self, text: str) -> SparseVector:
        """BM25-saturated term frequencies of a chunk's embed text."""
        tokens = self.tokenize(text)
        if not tokens:
            return SparseVector(indices=[], values=[])
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avg_len)
        weights: dict[int, float] = {}
        for term, tf in Counter(tokens).items():
            # Two terms hashing to one id simply add up, as if they were one word.
            tid = self.term_id(term)
            weights[tid] = weights.get(tid, 0.0) + tf * (self.k1 + 1) / (tf + norm)
        return _sorted_vector(weights)

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """Vectorised convenience over :meth:`encode_document`."""
        return [self.encode_document(t) for t in texts]

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1 per unique query term (IDF comes from the index)."""
        ids = {self.term_id(t) for t in self.tokenize(text)}
        return _sorted_vector(dict.fromkeys(ids, 1.0))

    def encode_weighted_query(self, weights: Mapping[str, float]) -> SparseVector:
        """Query vector from already tokenized terms and their weights (a term id shared by
        two terms keeps the larger weight); zero weights are left out."""
        out: dict[int, float] = {}
        for term, weight in weights.items():
            if weight > 0:
                tid = self.term_id(term)
                out[tid] = max(out.get(tid, 0.0), float(weight))
        return _sorted_vector(out)


def _sorted_vector(weights: dict[int, float]) -> SparseVector:
    indices = sorted(weights)
    values = [float(weights[i]) for i in indices]
    if any(not math.isfinite(v) for v in values):  # pragma: no cover - defensive
        raise ValueError("non-finite sparse weight")
    return SparseVector(indices=indices, values=values)
