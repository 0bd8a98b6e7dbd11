"""Scheduled work of the agent workspace (Celery beat, workers/config.py)."""

from __future__ import annotations

from celery import shared_task

from apps.workspace import handoff


@shared_task(ignore_result=True)
def presence_sweep() -> int:
    """Agents whose console went quiet for AGENT_PRESENCE_GRACE_SECONDS go away; automatically
    assigned conversations of theirs pass to another online agent or back to the queue."""
    return handoff.presence_sweep()
