"""Pick the vector store backend from configuration."""

from __future__ import annotations

import os

from apps.knowledge.vectorstore.base import VectorStore


def get_vector_store(
    *,
    url: str | None = None,
    path: str | os.PathLike[str] | None = None,
    api_key: str | None = None,
) -> VectorStore:
    """A Qdrant server store when ``url`` is set, else an embedded edge store at ``path``."""
    if url:
        from apps.knowledge.vectorstore.client import QdrantClientStore

        return QdrantClientStore(url=url, api_key=api_key)
    if path is None:
        raise ValueError("set either url (Qdrant server) or path (embedded Qdrant Edge)")
    from apps.knowledge.vectorstore.edge import EdgeVectorStore

    return EdgeVectorStore(path)
