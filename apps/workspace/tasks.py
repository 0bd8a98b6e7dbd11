"""Scheduled work of the agent workspace (Celery beat, workers/config.py)."""

from __future__ import annotations

from celery import shared_task

from apps.tenants.models import Tenant
from apps.workspace import assignment, sla


@shared_task(ignore_result=True)
def presence_sweep() -> int:
    """Agents whose console went quiet for AGENT_PRESENCE_GRACE_SECONDS go away; automatically
    assigned conversations of theirs pass to another online agent or back to the queue."""
    return assignment.presence_sweep()


@shared_task(ignore_result=True)
def sla_check() -> int:
    """Record each first-response or resolution target a conversation missed, once."""
    return sla.sla_check()


@shared_task(
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=30,
    max_retries=5,
)
def notify_assigned_by_email(tenant_id: int, conversation_id: int, user_id: int) -> bool:
    """Email an agent who is away that a conversation was assigned to them (SMTP errors are
    retried with backoff)."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return False
    return assignment.assigned_email_send(
        tenant=tenant, conversation_id=conversation_id, user_id=user_id
    )
