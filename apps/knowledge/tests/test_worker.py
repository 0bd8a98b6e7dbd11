"""`sync_source` through a real Celery worker subprocess, sharing the embedded store with us.

The worker consumes the `ingest` queue on its own broker database (redis db 7), uses the test
database (rows must be committed: `transactional_db`) and the same embedded Qdrant Edge folder
as this process, so the shard lease is handed over between two processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from apps.knowledge.models import Source
from apps.knowledge.selectors import chunk_search
from apps.knowledge.services import source_create
from tests.support.fixtures import (
    WorkerProcess,
    _point_celery_at,
    _require_redis,
    _stop,
    start_celery_worker,
    subprocess_env,
)
from tests.support.knowledge import knowledge_store  # noqa: F401

BROKER = "redis://127.0.0.1:6379/7"

pytestmark = pytest.mark.integration


@pytest.fixture
def ingest_worker(transactional_db, knowledge_store, settings, tmp_path) -> Iterator[WorkerProcess]:  # noqa: F811
    import redis

    _require_redis(BROKER)
    redis.Redis.from_url(BROKER).flushdb()
    env = subprocess_env(
        CELERY_BROKER_URL=BROKER,
        QDRANT_URL="",
        QDRANT_LOCAL_ENGINE=settings.QDRANT_LOCAL_ENGINE,
        QDRANT_PATH=str(settings.QDRANT_PATH),
        KNOWLEDGE_CRAWL_ALLOW_PRIVATE="true",
        HF_HUB_OFFLINE="1",
    )
    previous = _point_celery_at(BROKER)
    worker = None
    try:
        worker = start_celery_worker(
            env=env,
            log_path=tmp_path / "worker.log",
            queues="ingest",
            pool="solo",
            concurrency=1,
            name="kn",
            timeout=90,
        )
        yield worker
    finally:
        if worker is not None:
            _stop(worker.process, worker.node)
        _point_celery_at(previous)


def test_sync_source_runs_in_a_real_worker(ingest_worker, tenant_a):
    source = source_create(
        tenant=tenant_a.tenant,
        kind="text",
        name="Opening hours",
        text="The Tucson showroom is open Monday to Saturday from 8am to 6pm.",
    )
    assert source.status == Source.Status.QUEUED
    deadline = time.monotonic() + 120
    while True:
        source.refresh_from_db()
        if source.status in (Source.Status.SYNCED, Source.Status.FAILED):
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"the worker did not sync the source (status {source.status}). Its log:\n"
                + ingest_worker.log()[-4000:]
            )
        time.sleep(0.2)
    assert source.status == Source.Status.SYNCED, source.error
    assert source.chunk_count == 1
    # This process searches the store the worker wrote (the file lock is handed back and forth).
    results = chunk_search(tenant=tenant_a.tenant, query="when is the showroom open on Saturday")
    assert results and "8am to 6pm" in results[0].text
