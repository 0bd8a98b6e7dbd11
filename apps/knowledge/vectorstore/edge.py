"""Vector store on Qdrant Edge: Qdrant's engine in-process, one shard directory per collection.

Layout under ``root``::

    collections/<name>/shard/       the EdgeShard directory (segments, WAL, edge_config.json)
    collections/<name>/meta.json    {"dense_dim": 384, ...}
    locks/<name>.lock               flock: who may open the shard right now
    locks/<name>.want               touched by processes waiting for the lock
    aliases.json                    {"alias": "collection"}; replaced atomically (os.replace)
    aliases.lock                    flock serialising alias read-modify-write

Process model. A shard directory can be open in ONE ``EdgeShard`` at a time: a second
``EdgeShard.load`` fails with "Can't init WAL: WouldBlock" (measured with qdrant-edge-py 0.9.0).
So each collection is guarded by an exclusive ``flock`` lease. The holder keeps the shard open
while it is being used and for ``linger_s`` afterwards (opening costs ~70 ms at 10k chunks,
~100 ms at 50k), but gives it up as soon as another process touches the ``.want`` file. Two
processes (web + worker) therefore take turns; a waiter blocks at most for the holder's
current operation plus the open. Within a process, operations on one collection are serialised
by a mutex (each search takes well under a millisecond at this scale). The leases are in
`edge_leases`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from apps.knowledge.vectorstore.base import (
    DENSE_VECTOR,
    HNSW_PAYLOAD_M,
    INDEXED_KEYWORD_FIELDS,
    SPARSE_VECTOR,
    TENANT_FIELD,
    ChunkPoint,
    CollectionNotFoundError,
    FilterSpec,
    QueryVectors,
    SearchHit,
    Selector,
    SparseVector,
    VectorStoreError,
    rankings,
    validate_name,
)
from apps.knowledge.vectorstore.edge_leases import ShardLease, lease_for
from apps.knowledge.vectorstore.interface import VectorStore

# --------------------------------------------------------------------------- store


class EdgeVectorStore(VectorStore):
    """:class:`VectorStore` on local Qdrant Edge shards (see module docstring for limits)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        linger_s: float = 1.0,
        lock_timeout_s: float = 30.0,
        search_threads: int | None = 1,
    ) -> None:
        """``linger_s=math.inf`` keeps shards open until :meth:`close` (single-process use)."""
        self.root = Path(path)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "collections").mkdir(exist_ok=True)
        (self.root / "locks").mkdir(exist_ok=True)
        self.linger_s = linger_s
        self.lock_timeout_s = lock_timeout_s
        # One search thread per shard: requests are already parallel across processes, and
        # per-query segment parallelism only adds scheduling overhead at this size.
        self.search_threads = search_threads
        self._aliases_cache: tuple[int, dict[str, str]] = (-1, {})
        self._leases: dict[str, ShardLease] = {}

    # ------------------------------------------------------------------ paths

    def _collection_dir(self, name: str) -> Path:
        return self.root / "collections" / validate_name(name)

    def _lease(self, name: str) -> ShardLease:
        lease = self._leases.get(name)
        if lease is None:  # resolve() costs syscalls: do it once per collection, not per search
            base = self._collection_dir(name)
            lease = lease_for(
                (base / "shard").resolve(),
                (self.root / "locks" / f"{name}.lock").resolve(),
                (self.root / "locks" / f"{name}.want").resolve(),
            )
            self._leases[name] = lease
        return lease

    @contextlib.contextmanager
    def _shard(
        self, name: str, *, write: bool = False, create: qe.EdgeConfig | None = None
    ) -> Iterator[qe.EdgeShard]:
        lease = self._lease(name)
        with lease.mutex:
            lease.linger_s = self.linger_s
            shard = lease.open(timeout_s=self.lock_timeout_s, create=create)
            try:
                yield shard
            finally:
                lease.dirty = lease.dirty or write
                lease.last_used = time.monotonic()
                if self.linger_s <= 0 or lease.someone_waits():
                    lease.release()

    def _resolve(self, name: str) -> str:
        target = self._read_aliases().get(name)
        resolved = target or name
        if not (self._collection_dir(resolved) / "meta.json").exists():
            raise CollectionNotFoundError(f"no collection or alias named {name!r}")
        return resolved

    # ------------------------------------------------------------------ collections

    def ensure_collection(self, name: str, *, dense_dim: int) -> bool:
        base = self._collection_dir(name)
        meta_path = base / "meta.json"
        if meta_path.exists():
            self._check_dim(name, dense_dim)
            return False
        config = qe.EdgeConfig(
            vectors={
                DENSE_VECTOR: qe.EdgeVectorParams(size=dense_dim, distance=qe.Distance.Cosine)
            },
            sparse_vectors={SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            # Qdrant's defaults, except the global graph (m=0): see HNSW_PAYLOAD_M. A global
            # graph over 50k chunks took 60 s to build on 2 cores and no filtered search used it.
            hnsw_config=qe.HnswIndexConfig(
                m=0, ef_construct=100, full_scan_threshold=10_000, payload_m=HNSW_PAYLOAD_M
            ),
            max_search_threads=self.search_threads,
        )
        with self._shard(name, write=True, create=config) as shard:
            if meta_path.exists():  # another process won the race while we waited
                self._check_dim(name, dense_dim)
                return False
            for field in INDEXED_KEYWORD_FIELDS:
                tenant = field == TENANT_FIELD
                params = qe.KeywordIndexParams(is_tenant=tenant, enable_hnsw=tenant)
                shard.update(qe.UpdateOperation.create_field_index(field, params))
            _atomic_write_json(meta_path, {"dense_dim": dense_dim, "created_at": time.time()})
        return True

    def _check_dim(self, name: str, dense_dim: int) -> None:
        existing = self._dense_dim(name)
        if existing != dense_dim:
            raise VectorStoreError(f"collection {name!r} has dense_dim={existing}, not {dense_dim}")

    def delete_collection(self, name: str) -> None:
        base = self._collection_dir(name)
        if not base.exists():
            return
        lease = self._lease(name)
        with lease.mutex:
            lease.release()
            lease._lock(self.lock_timeout_s)  # exclusive: nobody has the shard open
            try:
                # Rename first so a crash never leaves a half-deleted collection visible.
                trash = self.root / "collections" / f".trash-{name}-{time.time_ns()}"
                with contextlib.suppress(FileNotFoundError):
                    base.rename(trash)
                    shutil.rmtree(trash, ignore_errors=True)
            finally:
                lease._unlock()
        self._update_aliases(lambda aliases: {a: c for a, c in aliases.items() if c != name})

    def list_collections(self) -> list[str]:
        return sorted(
            p.name
            for p in (self.root / "collections").iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "meta.json").exists()
        )

    def _dense_dim(self, collection: str) -> int | None:
        meta = self._collection_dir(self._resolve(collection)) / "meta.json"
        return int(json.loads(meta.read_text())["dense_dim"])

    def optimize(self, collection: str) -> bool:
        """Run the segment optimizer now; True when it changed anything.

        Writes already run it (see :meth:`_write`); this is for benchmarks and maintenance.
        """
        with self._shard(self._resolve(collection), write=True) as shard:
            return bool(shard.optimize())

    def close(self) -> None:
        """Close every shard this store opened (other store objects on the root share them)."""
        for lease in list(self._leases.values()):
            with lease.mutex:
                lease.release()

    # ------------------------------------------------------------------ aliases

    def _read_aliases(self) -> dict[str, str]:
        path = self.root / "aliases.json"
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        cached_mtime, cached = self._aliases_cache
        if cached_mtime == mtime:
            return cached
        aliases = json.loads(path.read_text())
        self._aliases_cache = (mtime, aliases)
        return aliases

    def _update_aliases(self, change: Any) -> None:
        lock_path = self.root / "aliases.lock"
        with open(lock_path, "a+") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                path = self.root / "aliases.json"
                current = json.loads(path.read_text()) if path.exists() else {}
                updated = change(dict(current))
                if updated != current:
                    _atomic_write_json(path, updated)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def get_alias_target(self, alias: str) -> str | None:
        return self._read_aliases().get(validate_name(alias))

    def switch_alias(self, alias: str, new_collection: str) -> None:
        validate_name(alias)
        if not (self._collection_dir(new_collection) / "meta.json").exists():
            raise CollectionNotFoundError(f"no collection named {new_collection!r}")
        if (self._collection_dir(alias) / "meta.json").exists():
            raise VectorStoreError(f"{alias!r} is a collection name, not usable as an alias")
        self._update_aliases(lambda aliases: {**aliases, alias: new_collection})

    def delete_alias(self, alias: str) -> None:
        validate_name(alias)
        self._update_aliases(lambda aliases: {a: c for a, c in aliases.items() if a != alias})

    # ------------------------------------------------------------------ writes

    def _write(self, collection: str, operation: qe.UpdateOperation) -> None:
        with self._shard(self._resolve(collection), write=True) as shard:
            shard.update(operation)
            # Edge has no background optimizer, so writes run it. It returns at once (~0.1 ms)
            # unless the appendable segment crossed the indexing threshold or deletions piled
            # up; then it turns that segment into an indexed one (about 0.5-2 s per 10k
            # points on 2 cores), which makes filtered searches about twice as fast.
            shard.optimize()

    def _upsert(self, collection: str, points: Sequence[ChunkPoint]) -> None:
        native = [
            qe.Point(
                p.id,
                {DENSE_VECTOR: list(map(float, p.dense)), SPARSE_VECTOR: _edge_sparse(p.sparse)},
                dict(p.payload),
            )
            for p in points
        ]
        self._write(collection, qe.UpdateOperation.upsert_points(native))

    def _delete_points(self, collection: str, ids: list[str]) -> None:
        self._write(collection, qe.UpdateOperation.delete_points(ids))

    def _delete_by_filter(self, collection: str, spec: FilterSpec) -> None:
        self._write(collection, qe.UpdateOperation.delete_points_by_filter(to_edge_filter(spec)))

    # ------------------------------------------------------------------ reads

    def _count(self, collection: str, spec: FilterSpec | None) -> int:
        request = qe.CountRequest(filter=to_edge_filter(spec) if spec else None, exact=True)
        with self._shard(self._resolve(collection)) as shard:
            return int(shard.count(request))

    def _query(
        self,
        collection: str,
        *,
        spec: FilterSpec,
        queries: QueryVectors,
        depth: int,
        select: Selector,
    ) -> list[SearchHit]:
        # Rank without payloads (payloads live on disk: loading 80 of them cost more than both
        # searches), then load the payloads of the chosen hits only. Both steps run under one
        # hold of the shard, so they see the same collection generation and the same points.
        # A single ranking is returned whole, so it brings its payloads along at once.
        inline = len(queries) == 1
        flt = to_edge_filter(spec)
        batch = qe.QueryBatchRequest(
            [
                qe.QueryRequest(
                    limit=depth,
                    query=qe.Query.Nearest(
                        _edge_sparse(vector) if isinstance(vector, SparseVector) else vector,
                        using=name,
                    ),
                    filter=flt,
                    with_payload=inline,
                )
                for name, vector in queries.items()
            ]
        )
        with self._shard(self._resolve(collection)) as shard:
            chosen = select(rankings(queries, shard.query_batch(batch)))
            if inline or not chosen:
                return chosen
            # The scope filter again, with the ids: every read goes through the tenant filter.
            records, _ = shard.scroll(
                qe.ScrollRequest(
                    limit=len(chosen),
                    filter=to_edge_filter(spec, ids=[h.id for h in chosen]),
                    with_payload=True,
                    with_vector=False,
                )
            )
        payloads = {str(r.id): dict(r.payload or {}) for r in records}
        return [replace(h, payload=payloads[h.id]) for h in chosen if h.id in payloads]


def to_edge_filter(spec: FilterSpec, *, ids: Sequence[str] = ()) -> qe.Filter:
    """Translate the neutral :class:`FilterSpec` into a Qdrant Edge filter (plus point ids)."""
    conditions: list[Any] = []
    for match in spec.must:
        if len(match.values) == 1:
            conditions.append(qe.FieldCondition(match.key, match=qe.MatchValue(match.values[0])))
        else:
            conditions.append(qe.FieldCondition(match.key, match=qe.MatchAny(list(match.values))))
    if ids:
        conditions.append(qe.HasIdCondition(set(ids)))
    return qe.Filter(must=conditions)


def _edge_sparse(vector: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(list(vector.indices), list(vector.values))


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    """Write-then-rename: readers see the old or the new file, never a partial one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise
