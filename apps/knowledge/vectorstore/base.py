"""Backend-neutral vector store data types, payloads and THE tenant/access filter.

Tenant isolation lives in exactly one place: :func:`scope_filter`. `VectorStore.search`
(interface.py) is a template method that validates the :class:`SearchScope`, builds the filter
with :func:`scope_filter` and only then hands a :class:`FilterSpec` to the backend's ``_query``.
Backends translate the neutral spec to their native filter and have no other way to search,
so a search without a tenant filter cannot be expressed. Hybrid fusion is in `fusion`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
