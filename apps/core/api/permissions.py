"""`HasScope`, the REST API's permission class: API keys need scopes, members need a role.

It checks `required_scopes` on the view (a dict from action to scopes; `"*"` is the fallback).
API keys need every scope; people signed in with a session need a membership role in the
tenant that covers them (`SCOPE_MIN_ROLE`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.core import permissions
from apps.core.api.auth import ApiKeyPrincipal
from apps.core.api.scopes import SCOPE_MIN_ROLE, Scope


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
        if not request.user or not request.user.is_authenticated:
            return False
        scopes = required_scopes_for(view, request)
        if isinstance(request.user, ApiKeyPrincipal):
            api_key = request.user.api_key
            missing = [s for s in scopes if not api_key.has_scope(s)]
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
