"""API plumbing shared by every app: the one error body and the tenant-resolving base viewsets."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, mixins, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError, TenantScopeError
from apps.integrations.api_auth import HasScope

# Public ids in URLs: anything else is not a route (and gets the API's 404).
UUID_REGEX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def error_body(*, code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Every 4xx the API returns has this shape."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return inner if key == "non_field_errors" else f"{key}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(
            error_body(code=exc.code, message=exc.message, details=exc.extra),
            status=exc.status_code,
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, TenantScopeError):
        # A missing tenant is our bug, never the caller's: answer as if nothing were there.
        exc = exceptions.NotFound()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = error_body(code="invalid", message=_first_message(exc.detail), details=exc.detail)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = error_body(
            code=code if isinstance(code, str) else "error", message=_first_message(detail)
        )
    response.data = body
    return response


class TenantViewSetMixin:
    """Resolves the request's tenant once (`self.tenant`) and scopes every queryset by it.

    Authentication decides the tenant: an API key belongs to exactly one tenant (set on
    `request.auth.tenant`); a session user names one of their tenants with `?tenant=<slug>` or
    the `X-Tenant` header.
    """

    tenant_role = None  # minimum membership role for session users; set by subclasses

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        from supportai.logging import bind_tenant

        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self.tenant = self.resolve_tenant(request)
        # The access log line and every log line of this request carry the tenant.
        bind_tenant(self.tenant)
        request._request.tenant = self.tenant

    def resolve_tenant(self, request: Request):
        from apps.core import permissions
        from apps.tenants.models import Role

        auth_tenant = getattr(request.auth, "tenant", None)
        if auth_tenant is not None:
            return auth_tenant
        slug = request.query_params.get("tenant") or request.headers.get("X-Tenant")
        if not slug:
            raise ApplicationError(
                "Name the tenant with ?tenant=<slug> or the X-Tenant header.",
                code="tenant_required",
            )
        return permissions.resolve_tenant(
            user=request.user, slug=slug, min_role=self.tenant_role or Role.AGENT
        )

    def get_queryset(self):
        return super().get_queryset().for_tenant(self.tenant)  # type: ignore[misc]


class TenantApiViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """Base of the REST API's viewsets: the tenant, the scope check and lookups by public id.

    Subclasses say what each action needs in `required_scopes` (action -> scopes, checked by
    `HasScope`); filtering and ordering are DRF's defaults from settings.
    """

    permission_classes = [IsAuthenticated, HasScope]
    lookup_field = "public_id"

    def validated(self, serializer_class: type, **kwargs: Any) -> Any:
        """The request body as `serializer_class` validates it (a 400 error body if it does not)."""
        serializer = serializer_class(data=self.request.data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class TenantCommandViewSet(TenantApiViewSet):
    """One POST that runs a service and answers with its result (ask, search): nothing to page
    or filter."""

    pagination_class = None
    filter_backends: list[Any] = []


class TenantModelViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    TenantApiViewSet,
):
    pass


class TenantReadOnlyViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, TenantApiViewSet):
    pass
