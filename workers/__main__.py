"""Start a Celery worker or beat: `python -m workers worker [queues]` / `python -m workers beat`.

The same entry point serves the demo (one worker on every queue) and production (one
Deployment per queue, e.g. `python -m workers worker ingest`).
"""

import os
import sys


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from supportai.celery import app
    from workers.config import TASK_QUEUES

    if not argv or argv[0] not in {"worker", "beat"}:
        sys.exit("usage: python -m workers worker [QUEUE,...] | beat")
    if argv[0] == "beat":
        from django.conf import settings

        app.start(["beat", "--loglevel", "info", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILE])
        return
    queues = argv[1] if len(argv) > 1 else ",".join(q.name for q in TASK_QUEUES)
    concurrency = os.environ.get("CELERY_CONCURRENCY", "2")
    app.worker_main(
        ["worker", "--loglevel", "info", "--queues", queues, "--concurrency", concurrency]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
