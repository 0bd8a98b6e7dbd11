"""A reindex whose Celery worker process is SIGKILLed half-way, with real worker processes.

The workers are `celery -A supportai worker --pool=prefork --concurrency=1` subprocesses (the
production pool), so the reindex runs in a pool child; the test kills that child, found through
`inspect().active()`, while the build is stalled half-way (the test holds a row lock on the
build's progress row, so the build cannot finish before the kill however fast the machine
is). They use the test
database and the same embedded Qdrant Edge folder as this process, and consume a queue of
their own (the knowledge tasks are routed there while the fixture is active), so a session-wide
worker on the same broker never takes the reindex.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from psycopg import sql

from apps.knowledge import runtime
from apps.knowledge.models import Chunk, KnowledgeIndex
from apps.knowledge.selectors import chunk_search
from tests.support.fixtures import (
    WorkerProcess,
    _point_celery_at,
    _require_redis,
    _stop,
    start_celery_worker,
    subprocess_env,
    wait_until,
)
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Each text source is its own batch in a reindex, so the build reports progress (and takes
# the store lock) once per document and runs for many seconds on any machine.
FILLER_DOCUMENTS = 120
# Workers (and this process) take a build silent for this long for dead.
STALE_SECONDS = 2
DOCS = {
    "Shipping": "Anvils ship by freight from Tucson. Delivery to Europe takes three weeks.",
    "Refunds": "Refunds are paid back to the original card within five working days.",
    "Care": "Oil your anvil monthly with linseed oil to keep rust away.",
}
QUERIES = {
    "how long does delivery to Europe take": "Shipping",
    "refund to the original card": "Refunds",
    "how do I keep rust away": "Care",
}
REINDEX_TASK = "apps.knowledge.tasks.reindex"


def route_tasks(app, routes) -> None:
    app.conf.task_routes = routes
    app.amqp.flush_routes()
    app.amqp.router = app.amqp.Router()  # a router keeps the routes it was built with


@pytest.fixture
def reindex_workers(knowledge_store, settings, tmp_path) -> Iterator[Callable[[], WorkerProcess]]:  # noqa: F811
    """`start()` → a new knowledge worker on a private queue; all are stopped at the end."""
    from supportai.celery import app

    queue = f"reindex-{uuid.uuid4().hex[:8]}"
    env = subprocess_env(
        QDRANT_URL="",
        QDRANT_LOCAL_ENGINE=settings.QDRANT_LOCAL_ENGINE,
        QDRANT_PATH=str(settings.QDRANT_PATH),
        KNOWLEDGE_REINDEX_STALE_SECONDS=str(STALE_SECONDS),
    )
    settings.KNOWLEDGE_REINDEX_STALE_SECONDS = STALE_SECONDS
    _require_redis(env["CELERY_BROKER_URL"])
    previous_broker = _point_celery_at(env["CELERY_BROKER_URL"])
    previous_routes = app.conf.task_routes
    route_tasks(app, {"apps.knowledge.tasks.*": {"queue": queue}})
    workers: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = start_celery_worker(
            env=env,
            log_path=tmp_path / f"worker-{len(workers) + 1}.log",
            queues=queue,
            pool="prefork",
            concurrency=1,
            name="reindex",
        )
        workers.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            _stop(worker.process, worker.node)
        route_tasks(app, previous_routes)
        _point_celery_at(previous_broker)


class Answer(NamedTuple):
    title: str
    document_id: int
    text: str
    score: float
    collection: str  # of the chunk row the point maps to


def answers(tenant) -> dict[str, list[Answer]]:
    """What the assistant retrieves for each query (`chunk_search`, as chat calls it)."""
    found = {}
    for query in QUERIES:
        results = chunk_search(tenant=tenant, query=query)
        collections = dict(
            Chunk.objects.unscoped()
            .filter(pk__in=[r.chunk_id for r in results])
            .values_list("pk", "index__collection")
        )
        found[query] = [
            Answer(r.title, r.document_id, r.text, round(r.score, 6), collections[r.chunk_id])
            for r in results
        ]
    return found


def alias_target() -> str | None:
    return runtime.get_store().get_alias_target(django_settings.QDRANT_COLLECTION)


def pid_running(worker: WorkerProcess, task_name: str) -> int | None:
    """The pid of the pool process running `task_name` on `worker`, from Celery itself."""
    from supportai.celery import app

    active = app.control.inspect(destination=[worker.node], timeout=1).active() or {}
    for task in active.get(worker.node, []):
        if task["name"] == task_name and task.get("worker_pid"):
            return int(task["worker_pid"])
    return None


@contextlib.contextmanager
def progress_row_locked(build: KnowledgeIndex) -> Iterator[None]:
    """Hold a row lock on the build's index row from a connection of its own.

    The build writes its progress (and heartbeat) to that row after every batch, so while the
    lock is held the worker waits inside its next write, part-way through the build.
    """
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"] or 5432,
    ) as locker:
        row = locker.execute(
            sql.SQL("SELECT status FROM {} WHERE id = %s FOR UPDATE").format(
                sql.Identifier(KnowledgeIndex._meta.db_table)
            ),
            [build.pk],
        ).fetchone()
        assert row == (KnowledgeIndex.Status.BUILDING,), f"the build ended first: {row}"
        try:
            yield
        finally:
            locker.rollback()


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie not yet reaped by its parent counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def build_progress(old: KnowledgeIndex, worker: WorkerProcess) -> KnowledgeIndex | None:
    """The new index row, once it exists; fails if the build ended (it must not, yet)."""
    build = KnowledgeIndex.objects.exclude(pk=old.pk).first()
    if build is not None and build.status != KnowledgeIndex.Status.BUILDING:
        pytest.fail(
            f"the build ended before it could be killed ({build.status}: {build.error}). "
            f"Worker log:\n{worker.log()[-4000:]}"
        )
    return build


def test_reindex_whose_worker_is_killed_half_way_leaves_old_collection_serving(
    reindex_workers, tenant_a, client, django_user_model
):
    tenant = tenant_a.tenant
    with runtime.store_session():  # one open of the embedded store for the whole corpus
        for title, text in DOCS.items():
            ingest_text(tenant=tenant, title=title, text=text)
        for n in range(FILLER_DOCUMENTS):
            ingest_text(
                tenant=tenant,
                title=f"Anvil model AX-{n:03d}",
                text=f"Anvil model AX-{n:03d} weighs {20 + n} kilograms and has a "
                f"{('round', 'square', 'hollow')[n % 3]} horn. Stock code {n * 7919 % 10007}.",
            )
    old = KnowledgeIndex.objects.get(status=KnowledgeIndex.Status.READY)
    before = answers(tenant)
    for query, title in QUERIES.items():
        assert before[query][0].title == title
        assert all(answer.collection == old.collection for answer in before[query])
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    start_reindex = reverse("admin:knowledge_knowledgeindex_start_reindex")

    first = reindex_workers()
    assert client.post(start_reindex).status_code == 302  # a GET only asks (issue #11)

    # Part-way: a quarter of the documents are in the new collection.
    total = len(DOCS) + FILLER_DOCUMENTS
    build = wait_until(
        lambda: (b := build_progress(old, first)) and b.documents_done >= total // 4 and b,
        timeout=300,
        message=f"the reindex made no progress. Worker log:\n{first.log()[-4000:]}",
    )
    with progress_row_locked(build):
        # The build now stalls at its next progress write: it cannot finish before the kill.
        pid = wait_until(
            lambda: pid_running(first, REINDEX_TASK),
            timeout=60,
            message="Celery does not report the reindex as running",
        )
        assert pid != first.process.pid  # the pool child, not the worker's main process
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: process_gone(pid), timeout=30, message=f"pid {pid} survived SIGKILL")

    # Search answers from the old collection, exactly as before; the half-built one is unseen.
    assert answers(tenant) == before
    assert alias_target() == old.collection
    build.refresh_from_db()
    assert build.status == KnowledgeIndex.Status.BUILDING
    assert 0 < build.documents_done < build.documents_total
    assert build.collection in runtime.get_store().list_collections()
    assert runtime.get_store().count(build.collection) > 0
    assert Chunk.objects.unscoped().filter(index=build).exists()
    old.refresh_from_db()
    assert old.status == KnowledgeIndex.Status.READY

    # A new worker; the stale-build sweep (beat) finds the orphan and frees its collection.
    _stop(first.process, first.node)
    second = reindex_workers()
    wait_until(
        lambda: (
            timezone.now() - KnowledgeIndex.objects.get(pk=build.pk).updated_at
            > timedelta(seconds=STALE_SECONDS)
        ),
        timeout=60,
        message="the orphaned build kept moving after its worker was killed",
    )
    from apps.knowledge.tasks import fail_stale_reindexes

    fail_stale_reindexes.delay()
    wait_until(
        lambda: KnowledgeIndex.objects.get(pk=build.pk).status == KnowledgeIndex.Status.FAILED,
        timeout=120,
        message=f"the orphaned build was not marked failed. Log:\n{second.log()[-4000:]}",
    )
    # The sweep marks the row first (a build still alive would see that and stop), then frees
    # the collection, which on the edge engine waits until this process hands over the shard
    # it still holds from the count above.
    wait_until(
        lambda: build.collection not in runtime.get_store().list_collections(),
        timeout=30,
        message=f"the orphaned build's collection was not deleted. Log:\n{second.log()[-4000:]}",
    )
    build.refresh_from_db()
    assert "Interrupted" in build.error
    assert not Chunk.objects.unscoped().filter(index=build).exists()
    assert answers(tenant) == before

    # A fresh reindex on the new worker runs to the end and search moves to its collection.
    assert client.post(start_reindex).status_code == 302  # a GET only asks (issue #11)
    new = wait_until(
        lambda: (
            KnowledgeIndex.objects.filter(status=KnowledgeIndex.Status.READY)
            .exclude(pk=old.pk)
            .first()
        ),
        timeout=300,
        message=f"the fresh reindex did not finish. Worker log:\n{second.log()[-4000:]}",
    )
    assert new.pk != build.pk
    assert new.documents_done == new.documents_total == total
    assert alias_target() == new.collection
    # The old index is retired and its collection dropped just after the new one goes live.
    wait_until(
        lambda: (
            KnowledgeIndex.objects.get(pk=old.pk).status == KnowledgeIndex.Status.RETIRED
            and runtime.get_store().list_collections() == [new.collection]
        ),
        timeout=60,
        message=f"the old collection was not retired. Log:\n{second.log()[-4000:]}",
    )
    after = answers(tenant)
    for query, title in QUERIES.items():
        top, was = after[query][0], before[query][0]
        assert (top.title, top.document_id, top.text) == (title, was.document_id, was.text)
        assert all(answer.collection == new.collection for answer in after[query])
    # The killed reindex was not redelivered: old, the failed build and the new one, no more.
    assert KnowledgeIndex.objects.count() == 3
