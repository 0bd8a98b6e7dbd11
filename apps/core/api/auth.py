"""Who an API request comes from: the API key it presents, or the person signed in.

The keys themselves (model, hashing, revocation, `ApiKeyAuthentication`) belong to
`apps.integrations`, which issues them; what every API needs to know about the caller is here.
This module is imported while DRF loads its settings, so it must not import DRF's views.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.request import Request


def api_key_presented(request: HttpRequest) -> str | None:
    """The raw key a request carries, or None if it carries none."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    api_key = request.headers.get("X-Api-Key", "").strip()
    return api_key or None


class ApiKeyPrincipal:
    """`request.user` for API-key requests: authenticated, but nobody's account."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: Any) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


def acting_user(request: Request) -> Any:
    """The signed-in person behind a request, or None for API keys (for `created_by`)."""
    user = request.user
    return None if isinstance(user, ApiKeyPrincipal) or not user.is_authenticated else user
