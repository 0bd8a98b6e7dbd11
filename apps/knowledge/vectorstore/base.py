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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

SearchMode = Literal["hybrid", "dense", "sparse"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)
FusionMethod = Literal["convex", "rrf"]
FUSION_METHODS: tuple[str, ...] = get_args(FusionMethod)

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "sparse"

# Reciprocal-rank-fusion constant (60 is the value from the original RRF paper).
RRF_K = 60

# Access-group value carried by documents every member of the tenant may see.
PUBLIC_GROUP = "*"

# Payload fields with a keyword index (tenant_id is the tenant/partition key).
TENANT_FIELD = "tenant_id"
INDEXED_KEYWORD_FIELDS: tuple[str, ...] = (
    TENANT_FIELD,
    "access_groups",
    "source_id",
    "document_id",
)
# HNSW links per node inside each tenant's graph. The global graph is off (m=0) because every
# search is tenant-filtered; graphs are built for the tenant field only (enable_hnsw on the
# other indexes is off), and only for tenants too large for an exact scan.
HNSW_PAYLOAD_M = 16
REQUIRED_PAYLOAD_FIELDS: tuple[str, ...] = (TENANT_FIELD, "access_groups")

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
class HybridFusion:
    """How a hybrid search combines the dense and the sparse ranking (docs/retrieval.md).

    ``convex``: each list's scores min-max normalised over its candidates, then
    ``dense_weight * dense + (1 - dense_weight) * sparse``. ``rrf``: the same weights on
    reciprocal ranks, ``1 / (rrf_k + rank)``. A hit missing from one list gets 0 from it.

    ``adaptive`` moves the dense weight per query towards the more decided retriever:
    ``dense_weight + adaptive * (margin(dense) - margin(sparse))``, kept within
    ``ADAPTIVE_BOUNDS``, where a list's margin is how far its best score stands above its
    fifth, relative to the best (:func:`score_margin`). 0 keeps the weight fixed.
    """

    method: FusionMethod = "convex"
    dense_weight: float = 0.8
    rrf_k: int = RRF_K
    adaptive: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise ValueError(f"fusion method must be one of {FUSION_METHODS}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError("dense_weight must be between 0 and 1")
        if self.rrf_k < 1:
            raise ValueError("rrf_k must be at least 1")
        if self.adaptive < 0:
            raise ValueError("adaptive must not be negative")

    def weight_for(
        self, dense_hits: Sequence[SearchHit], sparse_hits: Sequence[SearchHit]
    ) -> float:
        """The dense weight for this query (``dense_weight`` unless ``adaptive``)."""
        if not self.adaptive or not dense_hits or not sparse_hits:
            return self.dense_weight
        shift = self.adaptive * (score_margin(dense_hits) - score_margin(sparse_hits))
        low, high = ADAPTIVE_BOUNDS
        return min(high, max(low, self.dense_weight + shift))


DEFAULT_FUSION = HybridFusion()

# Adaptive fusion: the rank a list's best score is compared with, and the range the dense
# weight may move in (neither retriever is ever switched off).
MARGIN_RANK = 5
ADAPTIVE_BOUNDS = (0.1, 0.9)


def score_margin(ranked: Sequence[SearchHit]) -> float:
    """``(best - fifth best) / best`` of a ranking's scores (0 when the best is not positive):
    how clearly the retriever prefers its first hit over the rest."""
    if not ranked:
        return 0.0
    best = ranked[0].score
    if best <= 0:
        return 0.0
    other = ranked[min(MARGIN_RANK, len(ranked)) - 1].score
    return (best - other) / best


# What backends get to search with: vectors by retriever name, and a function that picks the
# hits to return from the rankings by retriever name (see VectorStore._query).
QueryVectors = Mapping[str, list[float] | SparseVector]
Rankings = dict[str, list[SearchHit]]
Selector = Callable[[Rankings], list[SearchHit]]


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


def rankings(queries: QueryVectors, results: Iterable[Iterable[Any]]) -> Rankings:
    """An engine's answers (one list of scored points per query, in the order of ``queries``)
    as hits by retriever name; each hit's ``found_by`` is that retriever."""
    return {
        name: [SearchHit(str(p.id), float(p.score), dict(p.payload or {}), {name}) for p in points]
        for name, points in zip(queries, results, strict=True)
    }


# --------------------------------------------------------------------------- fusion


def _minmax(hits: Sequence[SearchHit]) -> dict[str, float]:
    if not hits:
        return {}
    high = max(h.score for h in hits)
    low = min(h.score for h in hits)
    span = high - low
    return {h.id: (h.score - low) / span if span > 1e-9 else 1.0 for h in hits}


def fuse(
    dense_hits: Sequence[SearchHit],
    sparse_hits: Sequence[SearchHit],
    *,
    limit: int,
    fusion: HybridFusion,
) -> list[SearchHit]:
    """Combine two rankings of one collection, best first; ``found_by`` says who found each.

    Ties are broken by id, so the order does not depend on the engine's order of equal scores.
    """
    scores: dict[str, float] = {}
    hits: dict[str, SearchHit] = {}
    dense_weight = fusion.weight_for(dense_hits, sparse_hits)
    for name, ranked, weight in (
        (DENSE_VECTOR, dense_hits, dense_weight),
        (SPARSE_VECTOR, sparse_hits, 1 - dense_weight),
    ):
        if fusion.method == "convex":
            contribution = _minmax(ranked)
        else:
            contribution = {
                h.id: 1.0 / (fusion.rrf_k + rank) for rank, h in enumerate(ranked, start=1)
            }
        for hit in ranked:
            if hit.id not in hits:
                hits[hit.id] = SearchHit(id=hit.id, score=0.0, payload=hit.payload, found_by=set())
            hits[hit.id].found_by.add(name)
            scores[hit.id] = scores.get(hit.id, 0.0) + weight * contribution[hit.id]
    ordered = sorted(scores, key=lambda i: (-scores[i], i))[:limit]
    return [replace(hits[point_id], score=scores[point_id]) for point_id in ordered]


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
