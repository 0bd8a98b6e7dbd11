"""Celery tasks for knowledge: they take ids, load rows, call services and own the retries.

All of them run on the `ingest` queue (workers/config.py routes `apps.knowledge.tasks.*`).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import transaction

from apps.knowledge import crawl
from apps.knowledge.index_lifecycle import index_fail_stale_builds, index_rebuild
from apps.knowledge.models import Source
from apps.knowledge.sync import source_mark_queued, source_sync, sources_due
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

MAX_FETCH_RETRIES = 4


@shared_task(bind=True, ignore_result=True, max_retries=MAX_FETCH_RETRIES)
def sync_source(self: Any, tenant_id: int, source_id: int) -> None:
    """Sync one source. Transient fetch errors retry with backoff (30 s, 1, 2, 4 min)."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        logger.info("sync_source: tenant %s is gone or inactive", tenant_id)
        return
    source = Source.objects.for_tenant(tenant).filter(pk=source_id).first()
    if source is None:
        logger.info("sync_source: source %s of tenant %s is gone", source_id, tenant_id)
        return
    try:
        source_sync(source=source)
    except crawl.TransientFetchError as exc:
        if self.request.retries >= self.max_retries:
            logger.warning("sync_source %s: giving up after retries: %s", source_id, exc)
            return  # recorded as failed by source_sync
        countdown = 30 * 2**self.request.retries
        Source.objects.for_tenant(tenant).filter(pk=source_id).update(
            status=Source.Status.QUEUED, error=f"Retrying in {countdown} s: {exc}"
        )
        raise self.retry(exc=exc, countdown=countdown) from exc
    except Exception as exc:
        # source_sync recorded the failure on the source; the worker carries on.
        logger.exception("sync_source %s failed", source_id)
        _record_failure(tenant, source_id, exc)


def _record_failure(tenant: Tenant, source_id: int, exc: Exception) -> None:
    """Make sure a failure is visible on the source even if it came before source_sync's own
    bookkeeping (a database error while claiming, say)."""
    try:
        with transaction.atomic():
            Source.objects.for_tenant(tenant).filter(pk=source_id).exclude(
                status=Source.Status.FAILED
            ).update(status=Source.Status.FAILED, error=f"Internal error: {type(exc).__name__}")
    except Exception:
        logger.exception("could not record the failure of source %s", source_id)


@shared_task(ignore_result=True)
def resync_due_sources() -> int:
    """Beat, every 5 minutes: queue a sync of each source whose schedule is due."""
    due = sources_due()
    source_mark_queued(source_ids=[source_id for _, source_id in due])
    for tenant_id, source_id in due:
        sync_source.delay(tenant_id, source_id)
    return len(due)


@shared_task(ignore_result=True, acks_late=False)
def reindex(
    tenant_id: int | None = None,
    model_path: str | None = None,
    chunking: dict[str, Any] | None = None,
) -> str | None:
    """Build a new collection with every document re-chunked and re-embedded, then switch.

    Not acked late: a reindex killed half-way is not redelivered (it would start over while
    the failed index is being cleaned up); the admin starts a new one instead.
    """
    index = index_rebuild(tenant_id=tenant_id, model_path=model_path, chunking=chunking)
    return str(index.public_id) if index is not None else None


@shared_task(ignore_result=True)
def fail_stale_reindexes() -> int:
    """Beat, every 5 minutes: mark failed the reindexes whose worker died, free their collection."""
    return len(index_fail_stale_builds())
