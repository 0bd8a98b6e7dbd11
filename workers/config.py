"""Queues, routing and the beat schedule.

Queues are split by how work scales: `ingest` is CPU-heavy (parsing, embeddings) and wants its own
pool, `events` is I/O-bound (webhooks, analytics fan-out), `batch` holds nightly jobs that may run
long, and `default` takes the rest.
"""

from celery.schedules import crontab
from kombu import Queue

DEFAULT_QUEUE = "default"
TASK_QUEUES = (Queue("default"), Queue("ingest"), Queue("events"), Queue("batch"))

TASK_ROUTES = {
    "apps.knowledge.tasks.*": {"queue": "ingest"},
    "apps.integrations.tasks.*": {"queue": "events"},
    "apps.events.tasks.*": {"queue": "events"},
    "apps.analytics.tasks.*": {"queue": "batch"},
}

BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "apps.core.tasks.worker_heartbeat",
        "schedule": 30.0,
    },
    # Events committed whose dispatch task never ran (a worker died): nothing is lost.
    "dispatch-pending-events": {
        "task": "apps.events.tasks.dispatch_pending_events",
        "schedule": 60.0,
    },
    "deliver-lost-webhooks": {
        "task": "apps.integrations.tasks.deliver_lost_webhooks",
        "schedule": 120.0,
    },
    # Agents whose console went quiet: away, and their assigned conversations passed on.
    "workspace-presence-sweep": {
        "task": "apps.workspace.tasks.presence_sweep",
        "schedule": 30.0,
    },
    # Conversations past their inbox's first-response or resolution target: sla.breached.
    "workspace-sla-check": {
        "task": "apps.workspace.tasks.sla_check",
        "schedule": 60.0,
    },
    "purge-idempotency-records": {
        "task": "apps.integrations.tasks.purge_idempotency_records",
        "schedule": 3600.0,
    },
    # Analytics (times in settings.TIME_ZONE): yesterday's roll-ups, then the nightly summaries,
    # then the weekly drift check on Monday morning for the week that just ended.
    "analytics-rollup-yesterday": {
        "task": "apps.analytics.tasks.rollup_yesterday",
        "schedule": crontab(hour=0, minute=30),
    },
    "analytics-summarize-resolved-conversations": {
        "task": "apps.analytics.tasks.summarize_resolved_conversations",
        "schedule": crontab(hour=1, minute=30),
    },
    "analytics-drift-check": {
        "task": "apps.analytics.tasks.drift_check",
        "schedule": crontab(hour=3, minute=0, day_of_week=1),
    },
    # Knowledge sources with a re-sync schedule (each has its own interval in minutes).
    "resync-due-sources": {
        "task": "apps.knowledge.tasks.resync_due_sources",
        "schedule": 300.0,
    },
    # Reindexes whose worker died (no progress for KNOWLEDGE_REINDEX_STALE_SECONDS).
    "fail-stale-reindexes": {
        "task": "apps.knowledge.tasks.fail_stale_reindexes",
        "schedule": 300.0,
    },
}
