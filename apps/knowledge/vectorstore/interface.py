"""The vector store interface (`VectorStore`) the edge and client backends implement.

Public methods validate input and apply the scope; :meth:`VectorStore.search` is a template
method that builds the filter with :func:`base.scope_filter` and only then hands a
:class:`base.FilterSpec` to the backend's ``_query``, so a search without a tenant filter
cannot be expressed.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence

from apps.knowledge.vectorstore.base import (
    DENSE_VECTOR,
    REQUIRED_PAYLOAD_FIELDS,
    SEARCH_MODES,
    SPARSE_VECTOR,
    ChunkPoint,
    FilterSpec,
    QueryVectors,
    Rankings,
    ScopeRequiredError,
    SearchHit,
    SearchMode,
    SearchScope,
    Selector,
    SparseVector,
    ownership_filter,
    scope_filter,
)
from apps.knowledge.vectorstore.fusion import DEFAULT_FUSION, HybridFusion, fuse


def _validate_point(point: ChunkPoint, dense_dim: int | None) -> None:
    uuid.UUID(point.id)  # raises ValueError for non-uuid ids; Qdrant accepts uuid or int only
    for key in REQUIRED_PAYLOAD_FIELDS:
        if not point.payload.get(key):
            raise ValueError(f"point {point.id}: payload field {key!r} is required")
    if not isinstance(point.payload["access_groups"], list | tuple):
        raise ValueError(f"point {point.id}: access_groups must be a list")
    if dense_dim is not None and len(point.dense) != dense_dim:
        raise ValueError(f"point {point.id}: dense vector has {len(point.dense)} dims")


class VectorStore(ABC):
    """Operations the knowledge app needs; implemented by the edge and client backends.

    Public methods validate input and apply the scope; backends implement the ``_``-methods.
    """

    # ---- collections and aliases

    @abstractmethod
    def ensure_collection(self, name: str, *, dense_dim: int) -> bool:
        """Create the collection if missing (idempotent); True when it was created."""

    @abstractmethod
    def delete_collection(self, name: str) -> None:
        """Drop a collection (and aliases pointing at it); no-op when absent."""

    @abstractmethod
    def list_collections(self) -> list[str]:
        """Names of existing collections (not aliases), sorted."""

    @abstractmethod
    def get_alias_target(self, alias: str) -> str | None:
        """Collection an alias points at, or None."""

    @abstractmethod
    def switch_alias(self, alias: str, new_collection: str) -> None:
        """Point ``alias`` at ``new_collection`` atomically (readers see old or new, never none)."""

    @abstractmethod
    def delete_alias(self, alias: str) -> None:
        """Remove an alias; no-op when absent."""

    # ---- writes

    def upsert(self, collection: str, points: Sequence[ChunkPoint]) -> None:
        """Insert or replace points (validated: uuid ids, tenant_id and access_groups set)."""
        if not points:
            return
        dim = self._dense_dim(collection)
        for point in points:
            _validate_point(point, dim)
        self._upsert(collection, points)

    def delete_points(self, collection: str, ids: Sequence[str]) -> None:
        """Delete points by id (ids are tenant-unique uuids)."""
        if ids:
            self._delete_points(collection, [str(uuid.UUID(i)) for i in ids])

    def delete_by_filter(
        self,
        collection: str,
        *,
        tenant_id: str,
        source_id: str | None = None,
        document_id: str | None = None,
    ) -> None:
        """Delete a tenant's points, optionally narrowed to a source and/or document."""
        spec = ownership_filter(tenant_id=tenant_id, source_id=source_id, document_id=document_id)
        self._delete_by_filter(collection, spec)

    # ---- reads

    def count(
        self,
        collection: str,
        *,
        tenant_id: str | None = None,
        source_id: str | None = None,
        document_id: str | None = None,
    ) -> int:
        """Exact point count; the whole collection when ``tenant_id`` is None (admin/ops)."""
        if tenant_id is None:
            if source_id is not None or document_id is not None:
                raise ScopeRequiredError("count by source/document needs tenant_id")
            return self._count(collection, None)
        spec = ownership_filter(tenant_id=tenant_id, source_id=source_id, document_id=document_id)
        return self._count(collection, spec)

    def search(
        self,
        collection: str,
        *,
        scope: SearchScope,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        mode: SearchMode = "hybrid",
        limit: int = 10,
        prefetch_limit: int = 50,
        fusion: HybridFusion = DEFAULT_FUSION,
    ) -> list[SearchHit]:
        """Search a collection or alias, always restricted to ``scope``.

        hybrid: the dense and the sparse retriever (``prefetch_limit`` candidates each, one
        engine call) combined by :func:`fuse` with ``fusion``; an empty sparse vector (only
        stopwords) leaves the dense candidates alone in the fusion. dense / sparse: that
        retriever alone, with its own scores.
        """
        spec = scope_filter(scope)  # raises ScopeRequiredError for anything but a SearchScope
        if mode not in SEARCH_MODES:
            raise ValueError(f"mode must be one of {SEARCH_MODES}")
        if limit < 1 or prefetch_limit < 1:
            raise ValueError("limit and prefetch_limit must be positive")
        if mode in ("hybrid", "dense") and dense is None:
            raise ValueError(f"{mode} search needs a dense vector")
        if mode == "sparse" and sparse is None:
            raise ValueError("sparse search needs a sparse vector")
        if mode == "sparse" and not sparse:
            return []
        queries: dict[str, list[float] | SparseVector] = {}
        if dense is not None and mode != "sparse":
            queries[DENSE_VECTOR] = list(map(float, dense))
        if sparse and mode != "dense":
            queries[SPARSE_VECTOR] = sparse
        if mode != "hybrid":
            return self._query(
                collection, spec=spec, queries=queries, depth=limit, select=lambda r: r[mode]
            )

        def select(ranked: Rankings) -> list[SearchHit]:
            dense_hits, sparse_hits = ranked[DENSE_VECTOR], ranked.get(SPARSE_VECTOR, [])
            return fuse(dense_hits, sparse_hits, limit=limit, fusion=fusion)

        return self._query(
            collection,
            spec=spec,
            queries=queries,
            depth=max(prefetch_limit, limit),
            select=select,
        )

    def close(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Release files/connections held by the store."""

    # ---- backend hooks

    @abstractmethod
    def _dense_dim(self, collection: str) -> int | None:
        """Configured dense size of a collection (raises CollectionNotFoundError)."""

    @abstractmethod
    def _upsert(self, collection: str, points: Sequence[ChunkPoint]) -> None: ...

    @abstractmethod
    def _delete_points(self, collection: str, ids: list[str]) -> None: ...

    @abstractmethod
    def _delete_by_filter(self, collection: str, spec: FilterSpec) -> None: ...

    @abstractmethod
    def _count(self, collection: str, spec: FilterSpec | None) -> int: ...

    @abstractmethod
    def _query(
        self,
        collection: str,
        *,
        spec: FilterSpec,
        queries: QueryVectors,
        depth: int,
        select: Selector,
    ) -> list[SearchHit]:
        """Run the named queries (``depth`` hits each, ``spec`` on every one) in one engine call.

        ``select`` receives the rankings by name (each hit's ``found_by`` is that name) and
        returns the hits to give back; they must come back with their payloads. A backend may
        rank without payloads and load them, through ``spec`` again, for the chosen hits only.
        """
