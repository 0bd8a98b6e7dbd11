"""Deployment checks of our own, run by `manage.py check --deploy` next to Django's."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def shared_state_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Without Redis, rate limits, sign-in throttling and realtime events stay in one process."""
    if settings.REDIS_URL:
        return []
    return [
        Warning(
            "REDIS_URL is empty: chat and API rate limits, admin sign-in throttling and live "
            "events are counted and delivered inside each web process, so they do not hold "
            "across processes or replicas.",
            hint="Set REDIS_URL (redis://host:6379/0) in production.",
            id="supportai.W001",
        )
    ]
