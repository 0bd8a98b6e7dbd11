"""REST endpoints: the tenant's actions (admin scope) and the audit of their calls."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.actions import selectors, services
from apps.actions.filters import ActionCallFilter, ActionFilter
from apps.actions.models import Action, ActionCall
from apps.actions.serializers import ActionCallSerializer, ActionSerializer
from apps.core.api.scopes import Scope
from apps.core.api.viewsets import TenantModelViewSet, TenantReadOnlyViewSet


@extend_schema_view(
    list=extend_schema(summary="List actions", tags=["actions"]),
    retrieve=extend_schema(summary="Get an action", tags=["actions"]),
    create=extend_schema(summary="Create an action", tags=["actions"]),
    update=extend_schema(summary="Replace an action", tags=["actions"]),
    partial_update=extend_schema(summary="Change an action", tags=["actions"]),
    destroy=extend_schema(
        summary="Delete an action (its calls stay in the audit)", tags=["actions"]
    ),
)
class ActionViewSet(TenantModelViewSet):
    queryset = Action.objects.all()
    serializer_class = ActionSerializer
    # An action reaches into the company's systems with its credentials: admins only.
    required_scopes = {"*": [Scope.ADMIN]}
    filterset_class = ActionFilter
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return selectors.action_list(tenant=self.tenant)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.validated(ActionSerializer)
        action = services.action_create(tenant=self.tenant, **data)
        return Response(ActionSerializer(action).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        serializer = ActionSerializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        action = services.action_update(action=instance, **serializer.validated_data)
        return Response(ActionSerializer(action).data)

    def perform_destroy(self, instance: Action) -> None:
        services.action_delete(action=instance)


@extend_schema_view(
    list=extend_schema(summary="List action calls (the audit)", tags=["actions"]),
    retrieve=extend_schema(summary="Get an action call", tags=["actions"]),
)
class ActionCallViewSet(TenantReadOnlyViewSet):
    queryset = ActionCall.objects.all()
    serializer_class = ActionCallSerializer
    # Calls belong to conversations: whoever reads conversations reads what was done in them.
    required_scopes = {"*": [Scope.CONVERSATIONS_READ]}
    filterset_class = ActionCallFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return selectors.call_list(tenant=self.tenant)


router = SimpleRouter()
router.register("actions", ActionViewSet, basename="action")
router.register("action-calls", ActionCallViewSet, basename="action-call")
