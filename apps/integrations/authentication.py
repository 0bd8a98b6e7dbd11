"""API-key authentication for the REST API (a DRF default in settings).

`ApiKeyAuthentication` reads `Authorization: Bearer sk_live_…` or `X-Api-Key: sk_live_…`;
`request.user` is then an `ApiKeyPrincipal` and `request.auth` the `ApiKey` (its `.tenant` is the
request's tenant). Scopes, pagination, rate limits and the error body are the API's shared
plumbing in `apps.core.api`.

This module is imported while DRF loads its settings, so it must not import DRF's views.
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apps.core.api.auth import ApiKeyPrincipal, api_key_presented
from apps.integrations import selectors, services
from apps.integrations.models import API_KEY_PREFIX, ApiKey

_CACHE_ATTR = "_supportai_api_key"
_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8


# --- Authentication -----------------------------------------------------------------------------


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
