import socket

from celery import shared_task
from django.utils import timezone

from apps.core.models import WorkerHeartbeat


@shared_task(ignore_result=True)
def worker_heartbeat() -> None:
    """Beat sends this every 30 s; the worker that runs it records that it is alive."""
    WorkerHeartbeat.objects.update_or_create(
        hostname=socket.gethostname(), defaults={"seen_at": timezone.now()}
    )
