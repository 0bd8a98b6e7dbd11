"""The REST API's shared pieces: API-key authentication, scopes, pagination, rate limits.

Every API viewset in the project builds on these (they are DRF defaults in settings):

- `ApiKeyAuthentication` reads `Authorization: Bearer sk_live_…` or `X-Api-Key: sk_live_…`;
  `request.auth` is then the `ApiKey` (its `.tenant` is the request's tenant).
- `HasScope` checks `required_scopes` on the view (a dict from action to scopes; `"*"` is the
  fallback). API keys need the scopes; people signed in with a session need a membership role
  in the tenant that covers them (`SCOPE_MIN_ROLE`).
- `ApiCursorPagination` pages by `-created_at` with opaque cursors.
- `ApiRateThrottle` allows `API_RATE_LIMIT_PER_MINUTE` requests per key (or per person).

This module is imported while DRF loads its settings, so it must not import DRF's views.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.integrations import ratelimit, selectors, services
from apps.integrations.models import API_KEY_PREFIX, ApiKey, Scope
from apps.tenants.models import Role

# The role a signed-in member needs for what an API key needs a scope for.
SCOPE_MIN_ROLE: dict[str, Role] = {
    Scope.CONVERSATIONS_READ: Role.AGENT,
    Scope.CONVERSATIONS_WRITE: Role.AGENT,
    Scope.CONTACTS_READ: Role.AGENT,
    # Contacts come from the CRM and the widget's signed tokens; agents read the contacts of
    # the conversations they work, and only admins change them by hand.
    Scope.CONTACTS_WRITE: Role.ADMIN,
    Scope.KNOWLEDGE_READ: Role.AGENT,
    Scope.KNOWLEDGE_WRITE: Role.ADMIN,
    Scope.ANALYTICS_READ: Role.ADMIN,
    Scope.WEBHOOKS_MANAGE: Role.ADMIN,
    Scope.ADMIN: Role.ADMIN,
}

_CACHE_ATTR = "_supportai_api_key"
_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8


# --- Authentication -----------------------------------------------------------------------------


def api_key_presented(request: HttpRequest) -> str | None:
    """The raw key a request carries, or None if it carries none."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    api_key = request.headers.get("X-Api-Key", "").strip()
    return api_key or None


def api_key_check(raw: str) -> ApiKey:
    """The active key for `raw`, or AuthenticationFailed saying why not."""
    prefix, separator = raw[:_PREFIX_LENGTH], raw[_PREFIX_LENGTH : _PREFIX_LENGTH + 1]
    api_key = None
    if raw.startswith(API_KEY_PREFIX) and separator == "_" and len(raw) <= 200:
        api_key = selectors.api_key_get_by_prefix(prefix=prefix)
    # Hash even when the prefix is unknown, so timing does not tell which prefixes exist.
    presented_hash = services.api_key_hash(raw)
    stored_hash = api_key.secret_hash if api_key else "0" * 64
    if api_key is None or not hmac.compare_digest(presented_hash, stored_hash):
        raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
    if api_key.is_revoked:
        raise exceptions.AuthenticationFailed("This API key was revoked.", code="revoked_api_key")
    if api_key.is_expired():
        raise exceptions.AuthenticationFailed("This API key has expired.", code="expired_api_key")
    return api_key


def api_key_for_request(request: HttpRequest) -> ApiKey | None:
    """The valid key of a plain Django request, checked once per request (None if not valid)."""
    if not hasattr(request, _CACHE_ATTR):
        raw = api_key_presented(request)
        api_key = None
        if raw is not None:
            try:
                api_key = api_key_check(raw)
            except exceptions.AuthenticationFailed:
                api_key = None
        setattr(request, _CACHE_ATTR, api_key)
    return getattr(request, _CACHE_ATTR)


class ApiKeyPrincipal:
    """`request.user` for API-key requests: authenticated, but nobody's account."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        raw = api_key_presented(request._request)
        if raw is None:
            return None
        api_key = api_key_check(raw)
        setattr(request._request, _CACHE_ATTR, api_key)
        services.api_key_touch(api_key=api_key, now=timezone.now())
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing or wrong.
        return 'Bearer realm="api"'


def acting_user(request: Request) -> Any:
    """The signed-in person behind a request, or None for API keys (for `created_by`)."""
    user = request.user
    return None if isinstance(user, ApiKeyPrincipal) or not user.is_authenticated else user


# --- Scopes -------------------------------------------------------------------------------------


def required_scopes_for(view: Any, request: Request) -> list[str]:
    mapping = getattr(view, "required_scopes", None)
    if not isinstance(mapping, dict):
        raise ImproperlyConfigured(f"{type(view).__name__} uses HasScope without required_scopes")
    action = getattr(view, "action", None) or request.method.lower()
    if action == "head" and "head" not in mapping:
        action = "get"  # HEAD is GET without the body: the same scopes guard it
    scopes = mapping.get(action, mapping.get("*"))
    if getattr(view, "action_map", None) is None:
        # A plain APIView: OPTIONS only describes the endpoint, and a method without a handler
        # is answered 405 by DRF next. Nothing to guard, and no reason for a 500.
        unrouted = action == "options" or not hasattr(view, request.method.lower())
    else:
        unrouted = getattr(view, "action", None) is None or action == "metadata"
    if scopes is None and unrouted:
        # A method the viewset does not route (DRF answers 405 next) or OPTIONS, which only
        # describes the endpoint: nothing to guard, and no reason for a 500.
        return []
    if scopes is None:
        raise ImproperlyConfigured(f"{type(view).__name__}.required_scopes lacks {action!r}")
    return list(scopes)


class HasScope(BasePermission):
    """API keys need every scope in `view.required_scopes[action]`; members need the role."""

    message = "You do not have permission to do this."
    code = "permission_denied"

    def has_permission(self, request: Request, view: Any) -> bool:
        from apps.core import permissions

        if not request.user or not request.user.is_authenticated:
            return False
        scopes = required_scopes_for(view, request)
        if isinstance(request.auth, ApiKey):
            missing = [s for s in scopes if not request.auth.has_scope(s)]
            if missing:
                self.message = f"This API key lacks the scope(s): {', '.join(missing)}."
                self.code = "insufficient_scope"
            return not missing
        tenant = getattr(view, "tenant", None)
        if tenant is None and hasattr(view, "resolve_tenant"):
            # Not of the tenant → NotFound here, so other tenants' users learn nothing.
            tenant = view.tenant = view.resolve_tenant(request)
        if tenant is None:
            return bool(request.user.is_superuser)
        needed = [SCOPE_MIN_ROLE[Scope(s)] for s in scopes]
        if all(permissions.has_role(user=request.user, tenant=tenant, role=r) for r in needed):
            return True
        self.message = "Your role in this tenant does not allow this."
        return False


# --- Pagination and rate limits -------------------------------------------------------------------


class ApiCursorPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def rate_limit_identity(request: Request) -> str | None:
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.pk}"
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
