"""Vector store on ``qdrant-client``: a Qdrant server (production) or local mode (tests).

Server mode is the multi-process answer: any number of web/worker processes talk to one Qdrant.
Local mode (``path=`` or ``":memory:"``) is a pure-Python reimplementation inside qdrant-client,
holds a file lock on ``path`` (one process only) and scans linearly: use it for tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient, models

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
from apps.knowledge.vectorstore.interface import VectorStore


class QdrantClientStore(VectorStore):
    """:class:`VectorStore` over ``qdrant_client.QdrantClient``."""

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        path: str | None = None,
        client: QdrantClient | None = None,
        timeout: int = 30,
    ) -> None:
        """Exactly one of ``url`` (server), ``path`` (local mode; ``":memory:"`` allowed)
        or a ready ``client``."""
        if sum(x is not None for x in (url, path, client)) != 1:
            raise ValueError("pass exactly one of url, path or client")
        if client is not None:
            self.client = client
        elif url is not None:
            self.client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
        elif path == ":memory:":
            self.client = QdrantClient(location=":memory:")
        else:
            self.client = QdrantClient(path=path)
        self._dims: dict[str, int] = {}

    # ------------------------------------------------------------------ collections

    def ensure_collection(self, name: str, *, dense_dim: int) -> bool:
        validate_name(name)
        if self.client.collection_exists(name):
            existing = self._dense_dim(name)
            if existing != dense_dim:
                raise VectorStoreError(
                    f"collection {name!r} has dense_dim={existing}, not {dense_dim}"
                )
            return False
        try:
            self.client.create_collection(
                collection_name=name,
                vectors_config={
                    DENSE_VECTOR: models.VectorParams(
                        size=dense_dim, distance=models.Distance.COSINE
                    )
                },
                sparse_vectors_config={
                    SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                # Tenant-partitioned HNSW: with is_tenant below, Qdrant builds per-tenant graphs
                # instead of one global graph (m=0 disables the global one).
                hnsw_config=models.HnswConfigDiff(payload_m=HNSW_PAYLOAD_M, m=0),
            )
        except Exception as exc:  # lost a creation race with another process
            if self.client.collection_exists(name):
                return False
            raise VectorStoreError(f"could not create collection {name!r}") from exc
        with warnings.catch_warnings():
            # Local mode warns that payload indexes are no-ops there; that is expected.
            warnings.simplefilter("ignore")
            for field in INDEXED_KEYWORD_FIELDS:
                tenant = field == TENANT_FIELD
                schema = models.KeywordIndexParams(
                    type=models.KeywordIndexType.KEYWORD, is_tenant=tenant, enable_hnsw=tenant
                )
                self.client.create_payload_index(name, field_name=field, field_schema=schema)
        return True

    def delete_collection(self, name: str) -> None:
        validate_name(name)
        if name in self.list_collections():  # never resolve an alias to its target here
            for alias in self._aliases_of(name):
                self.delete_alias(alias)
            self.client.delete_collection(name)
        self._dims.pop(name, None)

    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def _dense_dim(self, collection: str) -> int | None:
        try:
            info = self.client.get_collection(collection)
        except (ValueError, KeyError) as exc:  # local mode
            raise CollectionNotFoundError(f"no collection or alias named {collection!r}") from exc
        except Exception as exc:
            if _is_not_found(exc):
                raise CollectionNotFoundError(
                    f"no collection or alias named {collection!r}"
                ) from exc
            raise
        vectors = info.config.params.vectors
        params = vectors.get(DENSE_VECTOR) if isinstance(vectors, dict) else vectors
        return int(params.size) if params is not None else None

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ aliases

    def _all_aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def _aliases_of(self, collection: str) -> list[str]:
        return [a for a, c in self._all_aliases().items() if c == collection]

    def get_alias_target(self, alias: str) -> str | None:
        return self._all_aliases().get(validate_name(alias))

    def switch_alias(self, alias: str, new_collection: str) -> None:
        validate_name(alias)
        if not self.client.collection_exists(validate_name(new_collection)):
            raise CollectionNotFoundError(f"no collection named {new_collection!r}")
        if alias in self.list_collections():  # collection_exists() is also true for aliases
            raise VectorStoreError(f"{alias!r} is a collection name, not usable as an alias")
        operations: list[Any] = []
        if alias in self._all_aliases():
            operations.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=new_collection, alias_name=alias)
            )
        )
        # One request: the server applies the delete and the create atomically.
        self.client.update_collection_aliases(change_aliases_operations=operations)

    def delete_alias(self, alias: str) -> None:
        validate_name(alias)
        if alias in self._all_aliases():
            self.client.update_collection_aliases(
                change_aliases_operations=[
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
                ]
            )

    # ------------------------------------------------------------------ writes

    def _upsert(self, collection: str, points: Sequence[ChunkPoint]) -> None:
        native = [
            models.PointStruct(
                id=p.id,
                vector={
                    DENSE_VECTOR: list(map(float, p.dense)),
                    SPARSE_VECTOR: _client_sparse(p.sparse),
                },
                payload=dict(p.payload),
            )
            for p in points
        ]
        self.client.upsert(collection_name=collection, points=native, wait=True)

    def _delete_points(self, collection: str, ids: list[str]) -> None:
        self.client.delete(
            collection_name=collection,
            points_selector=models.PointIdsList(points=list(ids)),
            wait=True,
        )

    def _delete_by_filter(self, collection: str, spec: FilterSpec) -> None:
        self.client.delete(
            collection_name=collection,
            points_selector=models.FilterSelector(filter=to_client_filter(spec)),
            wait=True,
        )

    # ------------------------------------------------------------------ reads

    def _count(self, collection: str, spec: FilterSpec | None) -> int:
        flt = to_client_filter(spec) if spec is not None else None
        return int(self.client.count(collection, count_filter=flt, exact=True).count)

    def _query(
        self,
        collection: str,
        *,
        spec: FilterSpec,
        queries: QueryVectors,
        depth: int,
        select: Selector,
    ) -> list[SearchHit]:
        # One round trip, payloads included: a server is across the network, where a second
        # call for the chosen payloads would cost more than sending them all. It also keeps
        # the ranking and the payloads on one alias target.
        flt = to_client_filter(spec)
        requests = [
            models.QueryRequest(
                query=_client_sparse(vector) if isinstance(vector, SparseVector) else vector,
                using=name,
                filter=flt,
                limit=depth,
                with_payload=True,
            )
            for name, vector in queries.items()
        ]
        responses = self.client.query_batch_points(collection_name=collection, requests=requests)
        return select(rankings(queries, (response.points for response in responses)))


def to_client_filter(spec: FilterSpec) -> models.Filter:
    """Translate the neutral :class:`FilterSpec` into a qdrant-client filter."""
    conditions: list[Any] = []
    for match in spec.must:
        if len(match.values) == 1:
            cond = models.MatchValue(value=match.values[0])
        else:
            cond = models.MatchAny(any=list(match.values))
        conditions.append(models.FieldCondition(key=match.key, match=cond))
    return models.Filter(must=conditions)


def _client_sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def _is_not_found(exc: Exception) -> bool:
    status = getattr(exc, "status_code", None)
    return status == 404 or "not found" in str(exc).lower()
