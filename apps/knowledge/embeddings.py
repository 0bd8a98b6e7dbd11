"""Dense (sentence-transformers) and sparse (BM25-style) encoders for chunks and queries.

The dense model is loaded lazily, once per process, from a local directory: nothing is ever
downloaded at runtime. The sparse encoder is pure Python and deterministic, so document vectors
computed by the worker and query vectors computed by the web process always agree.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from apps.knowledge.chunking import default_model_path
from apps.knowledge.vectorstore.base import SparseVector

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class DenseEmbedder:
    """Normalised float32 sentence embeddings from a local sentence-transformers model.

    Thread-safe; the model loads on first use (a few seconds, ~90 MB RAM for MiniLM), so
    importing this module or constructing the object is cheap.
    """

    def __init__(self, *, model_path: str | None = None, device: str = "cpu") -> None:
        self.model_path = model_path or default_model_path()
        self.device = device
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        """The loaded model (double-checked locking: load once even under concurrent calls)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    # Offline by construction: the path is a local directory, and this guards
                    # against any hub lookup sentence-transformers might attempt.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(
                        self.model_path, device=self.device, local_files_only=True
                    )
        return self._model

    @property
    def model_name(self) -> str:
        """Stable identifier stored with vectors so a model change forces a reindex."""
        path = Path(self.model_path)
        # Packaged models live in ".../<package>/model"; the package name is the useful part.
        return path.parent.name if path.name == "model" else path.name

    @property
    def dimension(self) -> int:
        """Embedding size (384 for all-MiniLM-L6-v2)."""
        dim = self.model.get_embedding_dimension()
        if dim is None:  # pragma: no cover - only for exotic models
            raise RuntimeError("model does not report its embedding dimension")
        return int(dim)

    @property
    def max_seq_length(self) -> int:
        """Tokens the model reads before truncating (the chunker stays below this)."""
        return int(self.model.max_seq_length)

    def embed_documents(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Embed chunk texts; returns an ``(n, dimension)`` float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns a ``(dimension,)`` float32 unit vector."""
        return self.embed_documents([text], batch_size=1)[0]


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


def _sorted_vector(weights: dict[int, float]) -> SparseVector:
    indices = sorted(weights)
    values = [float(weights[i]) for i in indices]
    if any(not math.isfinite(v) for v in values):  # pragma: no cover - defensive
        raise ValueError("non-finite sparse weight")
    return SparseVector(indices=indices, values=values)
