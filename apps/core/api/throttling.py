"""The REST API's rate limit (a DRF default in settings): `API_RATE_LIMIT_PER_MINUTE` requests
a minute per API key, or per signed-in person."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.core import ratelimit
from apps.core.api.auth import ApiKeyPrincipal


def rate_limit_identity(request: Request) -> str | None:
    if isinstance(request.user, ApiKeyPrincipal):
        return f"key:{request.user.api_key.pk}"
    user = request.user
    if user is not None and user.is_authenticated and user.pk is not None:
        return f"user:{user.pk}"
    return None


class ApiRateThrottle(BaseThrottle):
    """`API_RATE_LIMIT_PER_MINUTE` requests a minute per API key, or per signed-in person."""

    def __init__(self) -> None:
        self._retry_after: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        identity = rate_limit_identity(request)
        if identity is None:
            return True
        result = ratelimit.hit(f"api:{identity}", limit=settings.API_RATE_LIMIT_PER_MINUTE)
        self._retry_after = result.retry_after
        return result.allowed

    def wait(self) -> float | None:
        return self._retry_after
