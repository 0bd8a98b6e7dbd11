"""The Celery app. Queues, routing and the beat schedule live in `workers/`."""

import os

from celery import Celery

# Queues, routes and the beat schedule; workers/ imports no app, so there is no import cycle.
from workers import config

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")

app = Celery("supportai")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _configure() -> None:
    app.conf.update(
        task_routes=config.TASK_ROUTES,
        task_queues=config.TASK_QUEUES,
        task_default_queue=config.DEFAULT_QUEUE,
        beat_schedule=config.BEAT_SCHEDULE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_time_limit=30 * 60,
        task_soft_time_limit=25 * 60,
    )


_configure()
