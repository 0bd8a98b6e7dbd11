"""REST endpoints: inboxes and their grants, routing rules, and agents' presence.

Every lookup is the request's tenant's own (`TenantApiViewSet`): another tenant's inbox, rule
or agent is a 404, and a rule can only name this tenant's inboxes and widget keys.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.conversations.api_services import tenant_agent_find
from apps.core.api.auth import acting_user
from apps.core.api.scopes import Scope
from apps.core.api.viewsets import UUID_REGEX, TenantApiViewSet
from apps.core.errors import ApplicationError
from apps.tenants.models import WidgetKey
from apps.workspace import assignment, inbox_settings, selectors, services
from apps.workspace.models import AgentPresence, Inbox, RoutingRule
from apps.workspace.serializers import (
    GrantedAgentSerializer,
    GrantSerializer,
    InboxSerializer,
    InboxWriteSerializer,
    PresenceSerializer,
    RoutingRuleSerializer,
)

READ = [Scope.CONVERSATIONS_READ]
ADMIN = [Scope.ADMIN]


# --- Inboxes ------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List inboxes", tags=["inboxes"]),
    retrieve=extend_schema(summary="Get an inbox", tags=["inboxes"]),
)
class InboxViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantApiViewSet):
    queryset = Inbox.objects.none()  # for the schema; get_queryset scopes
    serializer_class = InboxSerializer
    required_scopes = {
        "list": READ,
        "retrieve": READ,
        "create": ADMIN,
        "partial_update": ADMIN,
        "grants": ADMIN,
        "revoke": ADMIN,
    }
    lookup_value_regex = UUID_REGEX
    filter_backends: list[Any] = []
    pagination_class = None
    ordering_fields: list[str] = []

    def get_queryset(self):
        user = acting_user(self.request)
        if user is None:
            selectors.inbox_default(tenant=self.tenant)
            return Inbox.objects.for_tenant(self.tenant)
        # People see the inboxes they may work (every one for owners and admins).
        return selectors.inboxes_visible(user=user, tenant=self.tenant)

    @extend_schema(
        summary="Create an inbox",
        tags=["inboxes"],
        request=InboxWriteSerializer,
        responses={201: InboxSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _inbox_fields(self.validated(InboxWriteSerializer))
        inbox = services.inbox_create(tenant=self.tenant, name=data.pop("name"))
        if data:
            inbox = inbox_settings.inbox_update(inbox=inbox, **data)
        return Response(InboxSerializer(inbox).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change an inbox (name, assistant, assignment, capacity)",
        tags=["inboxes"],
        request=InboxWriteSerializer(partial=True),
        responses=InboxSerializer,
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        inbox = inbox_settings.inbox_update(
            inbox=self.get_object(),
            **_inbox_fields(self.validated(InboxWriteSerializer, partial=True)),
        )
        return Response(InboxSerializer(inbox).data)

    @extend_schema(
        methods=["get"],
        summary="List the agents granted an inbox",
        tags=["inboxes"],
        request=None,
        responses=GrantedAgentSerializer(many=True),
    )
    @extend_schema(
        methods=["post"],
        summary="Grant an agent an inbox",
        tags=["inboxes"],
        request=GrantSerializer,
        responses=GrantedAgentSerializer(many=True),
        description="The agent (a member of this tenant) may then see and answer its "
        "conversations, and is among those automatic assignment chooses from.",
    )
    @action(detail=True, methods=["get", "post"])
    def grants(self, request: Request, public_id: str | None = None) -> Response:
        inbox = self.get_object()
        if request.method == "POST":
            agent = tenant_agent_find(
                tenant=self.tenant, agent=self.validated(GrantSerializer)["agent"]
            )
            services.inbox_grant(inbox=inbox, agent=agent)
        return Response(GrantedAgentSerializer(_granted(inbox), many=True).data)

    @extend_schema(
        summary="Revoke an agent's grant on an inbox",
        tags=["inboxes"],
        request=None,
        responses={204: None},
        parameters=[OpenApiParameter("agent", OpenApiTypes.INT, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["delete"], url_path=r"grants/(?P<agent>[0-9]{1,12})")
    def revoke(self, request: Request, public_id: str | None = None, agent: str = "") -> Response:
        inbox = self.get_object()
        services.inbox_revoke(inbox=inbox, agent=tenant_agent_find(tenant=self.tenant, agent=agent))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _inbox_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields = dict(data)
    if "holidays" in fields:
        fields["holidays"] = [day.isoformat() for day in fields["holidays"]]
    return fields


def _granted(inbox: Inbox) -> list[Any]:
    ids = assignment.inbox_agent_ids(inbox=inbox)
    return list(get_user_model().objects.filter(pk__in=ids).order_by("pk"))


# --- Routing rules --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List routing rules (in the order they are tried)", tags=["routing"]
    ),
    retrieve=extend_schema(summary="Get a routing rule", tags=["routing"]),
    create=extend_schema(summary="Create a routing rule", tags=["routing"]),
    update=extend_schema(summary="Replace a routing rule", tags=["routing"]),
    partial_update=extend_schema(summary="Change a routing rule", tags=["routing"]),
    destroy=extend_schema(summary="Delete a routing rule", tags=["routing"]),
)
class RoutingRuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantApiViewSet,
):
    queryset = RoutingRule.objects.none()  # for the schema; get_queryset scopes
    serializer_class = RoutingRuleSerializer
    required_scopes = {"*": ADMIN}
    lookup_value_regex = UUID_REGEX
    filter_backends: list[Any] = []
    pagination_class = None

    def get_queryset(self):
        return (
            RoutingRule.objects.for_tenant(self.tenant)
            .select_related("inbox", "widget_key")
            .order_by("position", "id")
        )

    def _fields(self, data: dict[str, Any]) -> dict[str, Any]:
        """Serializer data with the inbox and widget key looked up in this tenant only."""
        fields = dict(data)
        if "inbox" in fields:
            public_id = (fields.pop("inbox") or {}).get("public_id")
            fields["inbox"] = None
            if public_id is not None:
                fields["inbox"] = Inbox.objects.for_tenant(self.tenant).filter(
                    public_id=public_id
                ).first() or _missing("inbox")
        if "widget_key" in fields:
            key = (fields.pop("widget_key") or {}).get("key")
            fields["widget_key"] = None
            if key:
                fields["widget_key"] = WidgetKey.objects.for_tenant(self.tenant).filter(
                    key=key
                ).first() or _missing("widget_key")
        return fields

    def perform_create(self, serializer: RoutingRuleSerializer) -> None:
        serializer.instance = inbox_settings.routing_rule_create(
            tenant=self.tenant, **self._fields(serializer.validated_data)
        )

    def perform_update(self, serializer: RoutingRuleSerializer) -> None:
        serializer.instance = inbox_settings.routing_rule_update(
            rule=serializer.instance, **self._fields(serializer.validated_data)
        )

    def perform_destroy(self, instance: RoutingRule) -> None:
        inbox_settings.routing_rule_delete(rule=instance)


def _missing(field: str) -> Any:
    raise ApplicationError(f"No such {field.replace('_', ' ')} in this tenant.", {"field": field})


# --- Presence -----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List agents' presence",
        tags=["inboxes"],
        description="Online while the agent's console is open (within "
        "AGENT_PRESENCE_GRACE_SECONDS), away otherwise.",
    ),
)
class PresenceViewSet(mixins.ListModelMixin, TenantApiViewSet):
    queryset = AgentPresence.objects.none()  # for the schema; get_queryset scopes
    serializer_class = PresenceSerializer
    required_scopes = {"list": READ}
    filter_backends: list[Any] = []
    pagination_class = None

    def get_queryset(self):
        return (
            AgentPresence.objects.for_tenant(self.tenant).select_related("user").order_by("user_id")
        )


router = SimpleRouter()
router.register("inboxes", InboxViewSet, basename="inbox")
router.register("routing-rules", RoutingRuleViewSet, basename="routing-rule")
router.register("agents/presence", PresenceViewSet, basename="agent-presence")
