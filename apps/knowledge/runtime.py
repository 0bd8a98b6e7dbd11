"""Process-wide singletons: the embedder, the sparse encoder, the chunker and the vector store.

Each is built once per process from settings (the embedding model loads on first use and stays
loaded). Embedded vector stores are files that one process may hold open at a time:

- `edge` (Qdrant Edge, the default): helper-1's `EdgeVectorStore` already takes turns between
  processes itself (an exclusive `flock` lease per collection, handed over when another process
  signals that it waits; see docs/vectorstore.md), so it is used as is.
- `client` (qdrant-client local mode): a second process opening the folder fails outright
  ("already accessed by another instance"). `LockedLocalStore` therefore opens the store under
  an exclusive `fcntl` lock for each operation and closes it right after, so the web process and
  a Celery worker never hold it at the same time. Re-opening costs a few milliseconds for small
  collections and grows with the collection (local mode loads every point); docs/knowledge.md
  has the measurements. It is a fallback (the contract suite covers it), not the production path.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import snowballstemmer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.knowledge.chunking import Chunker, ChunkingConfig
from apps.knowledge.embeddings import DenseEmbedder, SparseEncoder, get_dense_embedder
from apps.knowledge.vectorstore import factory
from apps.knowledge.vectorstore.base import VectorStoreError
from apps.knowledge.vectorstore.interface import VectorStore

_LOCK = threading.RLock()
_EMBEDDERS: dict[str, DenseEmbedder] = {}
_SPARSE: dict[str, SparseEncoder] = {}
_CHUNKERS: dict[tuple[str, int, float], Chunker] = {}
_STORE: VectorStore | None = None
_STORE_KEY: tuple[Any, ...] | None = None
EDGE_LINGER_S = 30.0


class StoreBusyError(VectorStoreError):
    """Another process held the embedded store for longer than the lock timeout."""


def get_embedder(model_path: str | None = None) -> DenseEmbedder:
    """The dense embedder for `model_path` (default: settings.EMBEDDING_MODEL_PATH)."""
    path = model_path or settings.EMBEDDING_MODEL_PATH
    with _LOCK:
        embedder = _EMBEDDERS.get(path)
        if embedder is None:
            shared = get_dense_embedder()
            # One model copy per process, shared with code that uses embeddings' singleton.
            embedder = shared if shared.model_path == path else DenseEmbedder(model_path=path)
            _EMBEDDERS[path] = embedder
        return embedder


class StemmedSparseEncoder(SparseEncoder):
    """helper-1's BM25 encoder with Snowball stemming ("deleting" and "delete" match).

    On StackFAQ stemming lifts sparse-only hit@5 from 0.866 to 0.895 (docs/retrieval.md).
    Stemmer objects keep state while they work, so each thread gets its own; results are
    cached because the same words recur in every chunk.
    """

    def __init__(self, *, language: str, **kwargs: Any) -> None:
        if language not in snowballstemmer.algorithms():
            raise ImproperlyConfigured(f"KNOWLEDGE_SPARSE_STEMMER={language!r} is not a language")
        super().__init__(**kwargs)
        self.language = language
        self._local = threading.local()
        self._stem = functools.lru_cache(maxsize=200_000)(self._stem_uncached)

    def _stem_uncached(self, word: str) -> str:
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            stemmer = self._local.stemmer = snowballstemmer.stemmer(self.language)
        return stemmer.stemWord(word)

    def tokenize(self, text: str) -> list[str]:
        return [self._stem(token) for token in super().tokenize(text)]


def get_sparse_encoder(stemmer: str = "") -> SparseEncoder:
    """The sparse encoder an index was built with (`stemmer`: a Snowball language or "")."""
    with _LOCK:
        encoder = _SPARSE.get(stemmer)
        if encoder is None:
            encoder = StemmedSparseEncoder(language=stemmer) if stemmer else SparseEncoder()
            _SPARSE[stemmer] = encoder
        return encoder


def sparse_encoder_for(chunking: dict[str, Any] | None) -> SparseEncoder:
    """The sparse encoder of an index, from its stored config. Indexes built before stemming
    existed have no `sparse_stemmer` key and keep the plain encoder their vectors came from."""
    return get_sparse_encoder((chunking or {}).get("sparse_stemmer", ""))


def chunking_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The chunking settings as stored on a KnowledgeIndex (settings, then overrides)."""
    config = {
        "max_tokens": settings.KNOWLEDGE_CHUNK_MAX_TOKENS,
        "overlap_ratio": settings.KNOWLEDGE_CHUNK_OVERLAP,
        "title_in_embed": settings.KNOWLEDGE_TITLE_IN_EMBED,
        "sparse_stemmer": settings.KNOWLEDGE_SPARSE_STEMMER,
        "sparse_title_boost": settings.KNOWLEDGE_SPARSE_TITLE_BOOST,
        "rerank_windows": settings.KNOWLEDGE_RERANK_WINDOWS,
    }
    config.update(overrides or {})
    return config


def get_chunker(*, model_path: str | None = None, config: dict[str, Any] | None = None) -> Chunker:
    path = model_path or settings.EMBEDDING_MODEL_PATH
    merged = chunking_config(config)
    key = (path, int(merged["max_tokens"]), float(merged["overlap_ratio"]))
    with _LOCK:
        chunker = _CHUNKERS.get(key)
        if chunker is None:
            chunker = Chunker(
                config=ChunkingConfig(max_tokens=key[1], overlap_ratio=key[2]), model_path=path
            )
            _CHUNKERS[key] = chunker
        return chunker


def _store_key() -> tuple[Any, ...]:
    return (
        settings.QDRANT_URL,
        str(settings.QDRANT_PATH),
        settings.QDRANT_LOCAL_ENGINE,
        settings.QDRANT_API_KEY,
    )


def get_store() -> VectorStore:
    """The vector store from settings; rebuilt when the settings change (tests do that)."""
    global _STORE, _STORE_KEY
    key = _store_key()
    with _LOCK:
        if _STORE is None or key != _STORE_KEY:
            if _STORE is not None:
                with contextlib.suppress(Exception):
                    _STORE.close()
            _STORE = _build_store()
            _STORE_KEY = key
        return _STORE


def reset_store() -> None:
    """Close and forget the store (tests switching QDRANT_PATH, forked workers)."""
    global _STORE, _STORE_KEY
    with _LOCK:
        if _STORE is not None:
            with contextlib.suppress(Exception):
                _STORE.close()
        _STORE = None
        _STORE_KEY = None


def _build_store() -> VectorStore:
    if settings.QDRANT_URL:
        return factory.client_store(
            url=settings.QDRANT_URL, api_key=settings.QDRANT_API_KEY or None
        )
    path = Path(settings.QDRANT_PATH)
    path.mkdir(parents=True, exist_ok=True)
    if settings.QDRANT_LOCAL_ENGINE == "edge":
        # Shards stay open between calls (a sync embeds for seconds between upserts) and are
        # handed over as soon as another process asks for them, so lingering costs nobody.
        return factory.edge_store(
            path, linger_s=EDGE_LINGER_S, lock_timeout_s=settings.KNOWLEDGE_STORE_LOCK_TIMEOUT
        )

    def open_client() -> VectorStore:
        return factory.client_store(path=str(path / "client"))

    return LockedLocalStore(
        opener=open_client,
        lock_path=path / "client.lock",
        timeout_s=settings.KNOWLEDGE_STORE_LOCK_TIMEOUT,
    )


class LockedLocalStore:
    """A VectorStore proxy that holds the embedded store only for the length of each call.

    Calls from threads of one process are serialised by a re-entrant mutex; processes by an
    exclusive `flock` on `lock_path`. `session()` keeps the store open across several calls.
    """

    def __init__(
        self, *, opener: Callable[[], VectorStore], lock_path: Path, timeout_s: float
    ) -> None:
        self._opener = opener
        self._lock_path = lock_path
        self._timeout_s = timeout_s
        self._mutex = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._store: VectorStore | None = None
        self._pid = os.getpid()
        # Measured for docs/knowledge.md: seconds spent waiting for and opening the store.
        self.open_seconds = 0.0
        self.opens = 0

    @contextlib.contextmanager
    def session(self) -> Iterator[VectorStore]:
        if self._pid != os.getpid():  # a forked child must not reuse the parent's handles
            self._mutex = threading.RLock()
            self._depth, self._fd, self._store, self._pid = 0, None, None, os.getpid()
        with self._mutex:
            if self._depth == 0:
                started = time.perf_counter()
                self._acquire()
                try:
                    self._store = self._opener()
                except BaseException:
                    self._release()
                    raise
                self.open_seconds += time.perf_counter() - started
                self.opens += 1
            self._depth += 1
            try:
                yield self._store  # type: ignore[misc]
            finally:
                self._depth -= 1
                if self._depth == 0:
                    try:
                        self._store.close()  # type: ignore[union-attr]
                    finally:
                        self._store = None
                        self._release()

    def _acquire(self) -> None:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self._timeout_s
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StoreBusyError(f"{self._lock_path} is held by another process")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def close(self) -> None:
        """Nothing stays open between calls."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.session() as store:
                return getattr(store, name)(*args, **kwargs)

        return call


@contextlib.contextmanager
def store_session() -> Iterator[VectorStore]:
    """Hold the store for several operations (one open for embedded engines that need it)."""
    store = get_store()
    if isinstance(store, LockedLocalStore):
        with store.session() as opened:
            yield opened
    else:
        yield store
