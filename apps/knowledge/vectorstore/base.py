"""Backend-neutral vector store interface, data types and THE tenant/access filter.

Tenant isolation lives in exactly one place: :func:`scope_filter`. :meth:`VectorStore.search`
is a template method that validates the :class:`SearchScope`, builds the filter with
:func:`scope_filter` and only then hands a :class:`FilterSpec` to the backend's ``_query``.
Backends translate the neutral spec to their native filter and have no other way to search,
so a search without a tenant filter cannot be expressed.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

SearchMode = Literal["hybrid", "dense", "sparse"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "sparse"

# Reciprocal-rank-fusion constant, set explicitly so every backend fuses identically
# (60 is the value from the original RRF paper and a common default).
RRF_K = 60

# Access-group value carried by documents every member of the tenant may see.
PUBLIC_GROUP = "*"

# Payload fields with a keyword index (tenant_id is the tenant/partition key).
INDEXED_KEYWORD_FIELDS: tuple[str, ...] = ("tenant_id", "access_groups", "source_id", "document_id")
REQUIRED_PAYLOAD_FIELDS: tuple[str, ...] = ("tenant_id", "access_groups")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class VectorStoreError(Exception):
    """Base class for vector store failures."""


class CollectionNotFoundError(VectorStoreError):
    """The collection (or alias) does not exist."""


class ScopeRequiredError(VectorStoreError):
    """A search was attempted without a valid :class:`SearchScope`."""


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Qdrant-style sparse vector: sorted unique u32 ``indices`` and their ``values``."""

    indices: list[int]
    values: list[float]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("indices and values differ in length")

    def __bool__(self) -> bool:
        return bool(self.indices)


@dataclass(frozen=True, slots=True)
class ChunkPoint:
    """One chunk as stored: uuid id, both vectors and the payload (see :func:`chunk_payload`)."""

    id: str
    dense: Sequence[float]
    sparse: SparseVector
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SearchScope:
    """Who is searching: a tenant, and the access groups of the user.

    ``access_groups=None`` means "no access-group restriction inside the tenant" (staff tools,
    admin previews). A frozenset, even an empty one, restricts results to public documents
    plus documents shared with one of those groups.
    """

    tenant_id: str
    access_groups: frozenset[str] | None = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.tenant_id, str) or not self.tenant_id.strip():
            raise ScopeRequiredError("SearchScope.tenant_id must be a non-empty string")
        if self.access_groups is not None and not isinstance(self.access_groups, frozenset):
            raise TypeError("SearchScope.access_groups must be a frozenset or None")


@dataclass(slots=True)
class SearchHit:
    """A search result; ``found_by`` says which retriever(s) returned it."""

    id: str
    score: float
    payload: dict[str, Any]
    found_by: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class FieldMatch:
    """Payload ``key`` equals one of ``values`` (for list fields: any element does)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """Conjunction of :class:`FieldMatch` conditions; backends translate it natively."""

    must: tuple[FieldMatch, ...]


# --------------------------------------------------------------------------- filters


def scope_filter(scope: SearchScope) -> FilterSpec:
    """The single tenant + access-group filter every search goes through."""
    if not isinstance(scope, SearchScope):
        raise ScopeRequiredError("search requires a SearchScope")
    must = [FieldMatch("tenant_id", (scope.tenant_id,))]
    if scope.access_groups is not None:
        groups = (PUBLIC_GROUP, *sorted(g for g in scope.access_groups if g != PUBLIC_GROUP))
        must.append(FieldMatch("access_groups", groups))
    return FilterSpec(must=tuple(must))


def ownership_filter(
    *, tenant_id: str, source_id: str | None = None, document_id: str | None = None
) -> FilterSpec:
    """Filter for maintenance ops (delete/count); always pinned to one tenant."""
    if not isinstance(tenant_id, str) or not tenant_id.strip():
        raise ScopeRequiredError("tenant_id is required")
    must = [FieldMatch("tenant_id", (tenant_id,))]
    if source_id is not None:
        must.append(FieldMatch("source_id", (source_id,)))
    if document_id is not None:
        must.append(FieldMatch("document_id", (document_id,)))
    return FilterSpec(must=tuple(must))


def chunk_payload(
    *,
    tenant_id: str,
    source_id: str,
    document_id: str,
    chunk_id: str,
    access_groups: Sequence[str] | None,
    text: str,
    title: str = "",
    url: str = "",
    heading_path: Sequence[str] = (),
    version: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """Build a payload in the shape searches and filters expect.

    ``access_groups=None`` (or empty) marks the document public (``["*"]``).
    """
    groups = sorted(set(access_groups or ())) or [PUBLIC_GROUP]
    return {
        "tenant_id": tenant_id,
        "source_id": source_id,
        "document_id": document_id,
        "chunk_id": chunk_id,
        "access_groups": groups,
        "version": version,
        "text": text,
        "title": title,
        "url": url,
        "heading_path": list(heading_path),
        **extra,
    }


def validate_name(name: str) -> str:
    """Collection/alias names double as directory names for the edge store: keep them tame."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise ValueError(f"invalid collection or alias name: {name!r}")
    return name


def _validate_point(point: ChunkPoint, dense_dim: int | None) -> None:
    uuid.UUID(point.id)  # raises ValueError for non-uuid ids; Qdrant accepts uuid or int only
    for key in REQUIRED_PAYLOAD_FIELDS:
        if not point.payload.get(key):
            raise ValueError(f"point {point.id}: payload field {key!r} is required")
    if not isinstance(point.payload["access_groups"], list | tuple):
        raise ValueError(f"point {point.id}: access_groups must be a list")
    if dense_dim is not None and len(point.dense) != dense_dim:
        raise ValueError(f"point {point.id}: dense vector has {len(point.dense)} dims")


# --------------------------------------------------------------------------- interface


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
    ) -> list[SearchHit]:
        """Search a collection or alias, always restricted to ``scope``.

        hybrid: dense and sparse candidates (``prefetch_limit`` each) fused with RRF;
        dense / sparse: that retriever alone. A hybrid query whose sparse vector is empty
        (only stopwords) falls back to dense.
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
        if mode == "hybrid" and not sparse:
            mode = "dense"
        return self._query(
            collection,
            spec=spec,
            dense=list(map(float, dense)) if dense is not None else None,
            sparse=sparse,
            mode=mode,
            limit=limit,
            prefetch_limit=max(prefetch_limit, limit),
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
        dense: list[float] | None,
        sparse: SparseVector | None,
        mode: SearchMode,
        limit: int,
        prefetch_limit: int,
    ) -> list[SearchHit]:
        """Run the search with ``spec`` applied to every stage (prefetches included)."""
