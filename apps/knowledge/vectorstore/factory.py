"""Pick the vector store backend from configuration.

Qdrant's edge engine (the default) is light to import; qdrant-client (with gRPC and pydantic
models, seconds to import) is imported only when a Qdrant server or its local mode is chosen.
"""

from __future__ import annotations

import os
from typing import Any

from apps.knowledge.vectorstore.edge import EdgeVectorStore
from apps.knowledge.vectorstore.interface import VectorStore


def client_store(**kwargs: Any) -> VectorStore:
    """A qdrant-client store: a Qdrant server (`url=`) or qdrant-client's local mode (`path=`)."""
    # Heavy optional library (qdrant-client), loaded only when this engine is chosen.
    from apps.knowledge.vectorstore.client import QdrantClientStore

    return QdrantClientStore(**kwargs)


def edge_store(path: str | os.PathLike[str], **kwargs: Any) -> VectorStore:
    """Qdrant's own engine, embedded in this process."""
    return EdgeVectorStore(path, **kwargs)


def get_vector_store(
    *,
    url: str | None = None,
    path: str | os.PathLike[str] | None = None,
    api_key: str | None = None,
) -> VectorStore:
    """A Qdrant server store when ``url`` is set, else an embedded edge store at ``path``."""
    if url:
        return client_store(url=url, api_key=api_key)
    if path is None:
        raise ValueError("set either url (Qdrant server) or path (embedded Qdrant Edge)")
    return edge_store(path)
