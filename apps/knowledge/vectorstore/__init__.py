"""Vector storage behind one interface: Qdrant Edge (embedded) or a Qdrant server."""

from apps.knowledge.vectorstore.base import (
    PUBLIC_GROUP,
    ChunkPoint,
    CollectionNotFoundError,
    ScopeRequiredError,
    SearchHit,
    SearchMode,
    SearchScope,
    SparseVector,
    VectorStoreError,
    chunk_payload,
    scope_filter,
)
from apps.knowledge.vectorstore.factory import get_vector_store
from apps.knowledge.vectorstore.interface import VectorStore

__all__ = [
    "PUBLIC_GROUP",
    "ChunkPoint",
    "CollectionNotFoundError",
    "ScopeRequiredError",
    "SearchHit",
    "SearchMode",
    "SearchScope",
    "SparseVector",
    "VectorStore",
    "VectorStoreError",
    "chunk_payload",
    "get_vector_store",
    "scope_filter",
]
