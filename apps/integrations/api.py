"""REST endpoints: API keys, webhook subscriptions, webhook deliveries and events."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import (
    action,
    api_view,
    authentication_classes,
    permission_classes,
    throttle_classes,
)
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.auth import acting_user
from apps.core.api.scopes import Scope
from apps.core.api.viewsets import TenantApiViewSet, TenantModelViewSet, TenantReadOnlyViewSet
from apps.events.models import Event
from apps.integrations import selectors, services
from apps.integrations.filters import (
    ApiKeyFilter,
    EventFilter,
    WebhookDeliveryFilter,
    WebhookSubscriptionFilter,
)
from apps.integrations.models import ApiKey, WebhookDelivery, WebhookSubscription
from apps.integrations.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    EventSerializer,
    WebhookDeliveryDetailSerializer,
    WebhookDeliverySerializer,
    WebhookSubscriptionSerializer,
    WebhookSubscriptionWithSecretSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List API keys", tags=["api-keys"]),
    retrieve=extend_schema(summary="Get an API key", tags=["api-keys"]),
    destroy=extend_schema(summary="Revoke an API key", tags=["api-keys"]),
)
class ApiKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    TenantApiViewSet,
):
    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    required_scopes = {"*": [Scope.ADMIN]}
    filterset_class = ApiKeyFilter
    ordering_fields = ["created_at", "last_used_at"]

    def get_queryset(self):
        return selectors.api_key_list(tenant=self.tenant)

    @extend_schema(
        summary="Create an API key",
        tags=["api-keys"],
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
        description="The response holds the full `key`, shown this once.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        api_key, plaintext = services.api_key_create(
            tenant=self.tenant,
            created_by=acting_user(request),
            **self.validated(ApiKeyCreateSerializer),
        )
        api_key.key = plaintext
        return Response(ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        services.api_key_revoke(api_key=instance)

    @extend_schema(summary="Revoke an API key", tags=["api-keys"], request=None)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, public_id: str | None = None) -> Response:
        api_key = services.api_key_revoke(api_key=self.get_object())
        return Response(ApiKeySerializer(api_key).data)


@extend_schema_view(
    list=extend_schema(summary="List webhook subscriptions", tags=["webhooks"]),
    retrieve=extend_schema(summary="Get a webhook subscription", tags=["webhooks"]),
    update=extend_schema(summary="Replace a webhook subscription", tags=["webhooks"]),
    partial_update=extend_schema(summary="Change a webhook subscription", tags=["webhooks"]),
    destroy=extend_schema(summary="Delete a webhook subscription", tags=["webhooks"]),
)
class WebhookSubscriptionViewSet(TenantModelViewSet):
    queryset = WebhookSubscription.objects.all()
    serializer_class = WebhookSubscriptionSerializer
    required_scopes = {"*": [Scope.WEBHOOKS_MANAGE]}
    filterset_class = WebhookSubscriptionFilter
    ordering_fields = ["created_at"]

    @extend_schema(
        summary="Create a webhook subscription",
        tags=["webhooks"],
        responses={201: WebhookSubscriptionWithSecretSerializer},
        description="The response holds the signing `secret`, shown this once.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = services.webhook_subscription_create(
            tenant=self.tenant, created_by=acting_user(request), **serializer.validated_data
        )
        return Response(
            WebhookSubscriptionWithSecretSerializer(subscription).data,
            status=status.HTTP_201_CREATED,
        )

    def perform_update(self, serializer: WebhookSubscriptionSerializer) -> None:
        serializer.instance = services.webhook_subscription_update(
            subscription=serializer.instance, **serializer.validated_data
        )

    @extend_schema(
        summary="Rotate the signing secret",
        tags=["webhooks"],
        request=None,
        responses={200: WebhookSubscriptionWithSecretSerializer},
        description="The old secret keeps co-signing deliveries for 24 hours.",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, public_id: str | None = None) -> Response:
        subscription = services.webhook_subscription_rotate_secret(subscription=self.get_object())
        return Response(WebhookSubscriptionWithSecretSerializer(subscription).data)


@extend_schema_view(
    list=extend_schema(summary="List webhook deliveries", tags=["webhooks"]),
    retrieve=extend_schema(
        summary="Get a webhook delivery with its attempts",
        tags=["webhooks"],
        responses=WebhookDeliveryDetailSerializer,
    ),
)
class WebhookDeliveryViewSet(TenantReadOnlyViewSet):
    queryset = WebhookDelivery.objects.all()
    serializer_class = WebhookDeliverySerializer
    required_scopes = {"*": [Scope.WEBHOOKS_MANAGE]}
    filterset_class = WebhookDeliveryFilter
    ordering_fields = ["created_at", "next_attempt_at"]

    def get_queryset(self):
        queryset = selectors.webhook_delivery_list(tenant=self.tenant)
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("log")
        return queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return WebhookDeliveryDetailSerializer
        return WebhookDeliverySerializer

    @extend_schema(
        summary="Send a delivery again",
        tags=["webhooks"],
        request=None,
        responses={202: WebhookDeliverySerializer, 404: OpenApiResponse(description="Not found")},
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, public_id: str | None = None) -> Response:
        delivery = services.webhook_delivery_redeliver(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="List recent events", tags=["events"]),
    retrieve=extend_schema(summary="Get an event", tags=["events"]),
)
class EventViewSet(TenantReadOnlyViewSet):
    queryset = Event.objects.all()
    serializer_class = EventSerializer
    required_scopes = {"*": [Scope.ADMIN]}
    filterset_class = EventFilter
    ordering_fields = ["created_at"]


# --- Unknown URLs ---------------------------------------------------------------------------------


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def api_not_found(request: Request, path: str = "") -> None:
    raise exceptions.NotFound(f"There is no API endpoint at {request.path}.")
