"""Helpers for tests of any app that needs indexed knowledge (the chat assistant's, for one).

`ingest_text` runs the real pipeline (parse, chunk, embed, store) synchronously, without
Celery. Tests that use it need the `knowledge_store` fixture (a throw-away embedded store on the
default engine, Qdrant Edge); import it into the test module or a conftest:

    from tests.support.knowledge import knowledge_store  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apps.knowledge import runtime
from apps.knowledge.models import Source
from apps.knowledge.services import source_create
from apps.knowledge.sync import source_sync


def ingest_text(
    *,
    tenant: Any,
    title: str,
    text: str,
    url: str | None = None,
    access_groups: list[str] | None = None,
) -> Source:
    """Create a text source and sync it now; returns the source, refreshed (status synced)."""
    source = source_create(
        tenant=tenant,
        kind=Source.Kind.TEXT,
        name=title,
        text=text,
        url=url,
        access_groups=access_groups,
        sync=False,
    )
    source_sync(source=source)
    source.refresh_from_db()
    if source.status != Source.Status.SYNCED:
        raise AssertionError(f"ingest_text: source {title!r} did not sync: {source.error}")
    return source


@pytest.fixture
def knowledge_store(settings: Any, tmp_path: Any) -> Iterator[Any]:
    """A fresh embedded vector store for one test (Qdrant Edge, the default engine, in tmp_path).

    Subprocesses that share it (web, worker) get `QDRANT_LOCAL_ENGINE` and `QDRANT_PATH` from
    these settings; the edge engine hands the shard over between processes itself.
    """
    settings.QDRANT_URL = ""
    settings.QDRANT_LOCAL_ENGINE = "edge"
    settings.QDRANT_PATH = tmp_path / "qdrant"
    runtime.reset_store()
    yield runtime.get_store()
    runtime.reset_store()
