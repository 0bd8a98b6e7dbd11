"""The REST API's base viewsets: the tenant resolved once, the scope check, lookups by public id."""

from __future__ import annotations

from typing import Any

from rest_framework import mixins, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from apps.core import permissions
from apps.core.api.permissions import HasScope
from apps.core.errors import ApplicationError
from apps.tenants.models import Role
from supportai.logging import bind_tenant

# Public ids in URLs: anything else is not a route (and gets the API's 404).
UUID_REGEX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class TenantViewSetMixin:
    """Resolves the request's tenant once (`self.tenant`) and scopes every queryset by it.

    Authentication decides the tenant: an API key belongs to exactly one tenant (set on
    `request.auth.tenant`); a session user names one of their tenants with `?tenant=<slug>` or
    the `X-Tenant` header.
    """

    tenant_role = None  # minimum membership role for session users; set by subclasses

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self.tenant = self.resolve_tenant(request)
        # The access log line and every log line of this request carry the tenant.
        bind_tenant(self.tenant)
        request._request.tenant = self.tenant

    def resolve_tenant(self, request: Request):
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
