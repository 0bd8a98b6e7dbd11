"""REST endpoints: conversations and their messages, contacts, feedback, and one-shot questions.

Views validate with a serializer, call one service or selector from `api_services`/`services`/
`selectors`, and serialize the result; the tenant is the API key's (see apps.core.api).
"""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.conversations import api_services, services
from apps.conversations.filters import (
    ContactFilter,
    ConversationFilter,
    FeedbackFilter,
    MessageFilter,
)
from apps.conversations.models import Contact, Conversation, Feedback, Message
from apps.conversations.selectors import (
    contacts_for,
    conversation_get_for,
    conversation_user_may_work,
    conversations_for,
)
from apps.conversations.serializers import (
    AgentMessageCreateSerializer,
    AskAnswerSerializer,
    AskSerializer,
    AssignSerializer,
    ContactSerializer,
    ContactUpsertSerializer,
    ConversationSerializer,
    ConversationStatusSerializer,
    FeedbackCreateSerializer,
    FeedbackSerializer,
    MessageSerializer,
)
from apps.core.api.auth import acting_user
from apps.core.api.pagination import ApiCursorPagination
from apps.core.api.scopes import Scope
from apps.core.api.viewsets import UUID_REGEX, TenantApiViewSet, TenantCommandViewSet
from apps.core.errors import ApplicationError

READ = [Scope.CONVERSATIONS_READ]
WRITE = [Scope.CONVERSATIONS_WRITE]


class MessageCursorPagination(ApiCursorPagination):
    """A conversation reads oldest first; message ids only grow."""

    ordering = "id"


def _conversation_or_404(view: TenantApiViewSet, public_id: Any) -> Conversation:
    """The conversation if the caller may see it: a tenant's API key sees the whole tenant, a
    person the conversations of the inboxes they are granted (as in the admin and console)."""
    conversation = conversation_get_for(
        tenant=view.tenant, user=acting_user(view.request), public_id=public_id
    )
    if conversation is None:
        raise exceptions.NotFound("No such conversation.")
    return conversation


def _agent_who_may_work(conversation: Conversation, agent: Any) -> Any:
    """`agent`, if they may work the conversation (hold a grant on its inbox, or are an admin)."""
    if not conversation_user_may_work(conversation=conversation, user=agent):
        raise ApplicationError(
            "That member may not work this conversation (no grant on its inbox).",
            extra={"agent": str(agent.pk)},
        )
    return agent


def _conversation_path_parameter(name: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH)


# --- Conversations --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List conversations", tags=["conversations"]),
    retrieve=extend_schema(summary="Get a conversation", tags=["conversations"]),
)
class ConversationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantApiViewSet):
    queryset = Conversation.objects.none()  # for the schema; get_queryset scopes
    serializer_class = ConversationSerializer
    required_scopes = {
        "list": READ,
        "retrieve": READ,
        "partial_update": WRITE,
        "assign": WRITE,
        "resolve": WRITE,
    }
    lookup_value_regex = UUID_REGEX
    filterset_class = ConversationFilter
    ordering_fields = ["created_at", "updated_at"]

    def get_queryset(self):
        return conversations_for(tenant=self.tenant, user=acting_user(self.request))

    def _reply(self, conversation: Conversation) -> Response:
        conversation = _conversation_or_404(self, conversation.public_id)
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        summary="Change a conversation's status",
        tags=["conversations"],
        request=ConversationStatusSerializer,
        responses=ConversationSerializer,
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversation = api_services.conversation_status_set(
            conversation=self.get_object(),
            status=self.validated(ConversationStatusSerializer)["status"],
            by=acting_user(request),
        )
        return self._reply(conversation)

    @extend_schema(
        summary="Assign a conversation to an agent",
        tags=["conversations"],
        request=AssignSerializer,
        responses=ConversationSerializer,
        description="The agent (a member of the tenant) takes over; the assistant falls silent.",
    )
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, public_id: str | None = None) -> Response:
        conversation = self.get_object()
        agent = api_services.tenant_agent_find(
            tenant=self.tenant, agent=self.validated(AssignSerializer)["agent"]
        )
        agent = _agent_who_may_work(conversation, agent)
        return self._reply(services.conversation_assign(conversation=conversation, agent=agent))

    @extend_schema(
        summary="Resolve a conversation",
        tags=["conversations"],
        request=None,
        responses=ConversationSerializer,
        description="Records `conversation.resolved` and asks the customer for a rating.",
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, public_id: str | None = None) -> Response:
        conversation = services.conversation_resolve(
            conversation=self.get_object(), by=acting_user(request)
        )
        return self._reply(conversation)


@extend_schema_view(
    list=extend_schema(
        summary="List a conversation's messages (oldest first)",
        tags=["conversations"],
        parameters=[_conversation_path_parameter("conversation_id")],
    ),
    create=extend_schema(
        summary="Post an agent reply",
        tags=["conversations"],
        parameters=[_conversation_path_parameter("conversation_id")],
        request=AgentMessageCreateSerializer,
        responses={201: MessageSerializer},
        description=(
            "The reply reaches the customer's widget live and records `message.created`. The "
            "agent takes the conversation over if it is not theirs yet."
        ),
    ),
)
class MessageViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, TenantApiViewSet):
    queryset = Message.objects.none()  # for the schema; get_queryset scopes
    serializer_class = MessageSerializer
    required_scopes = {"list": READ, "create": WRITE}
    pagination_class = MessageCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = MessageFilter

    def conversation(self) -> Conversation:
        if not hasattr(self, "_conversation"):
            self._conversation = _conversation_or_404(self, self.kwargs["conversation_id"])
        return self._conversation

    def get_queryset(self):
        return (
            Message.objects.for_tenant(self.tenant)
            .filter(conversation=self.conversation())
            .select_related("author")
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversation = self.conversation()
        data = self.validated(AgentMessageCreateSerializer)
        user = acting_user(request)
        if user is not None and data.get("agent") not in (None, ""):
            named = api_services.tenant_agent_find(tenant=self.tenant, agent=data["agent"])
            if named.pk != user.pk:
                # People reply as themselves; only an integration's key names who replies.
                raise exceptions.PermissionDenied("You can only reply as yourself.")
        agent = api_services.agent_for_reply(
            conversation=conversation, agent=data.get("agent"), user=user
        )
        agent = _agent_who_may_work(conversation, agent)
        message = services.message_post_agent(
            conversation=conversation, agent=agent, content=data["content"]
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


# --- Contacts -------------------------------------------------------------------------------------

CONTACTS_READ = [Scope.CONTACTS_READ]
CONTACTS_WRITE = [Scope.CONTACTS_WRITE]
EXTERNAL_ID_PARAMETER = OpenApiParameter(
    "external_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Your id for the contact."
)


def _valid_external_id(external_id: str) -> bool:
    return bool(external_id) and len(external_id) <= 255 and "\x00" not in external_id


@extend_schema_view(
    list=extend_schema(summary="List contacts", tags=["contacts"]),
    retrieve=extend_schema(summary="Get a contact", tags=["contacts"]),
    create=extend_schema(summary="Create a contact", tags=["contacts"]),
    partial_update=extend_schema(summary="Change a contact", tags=["contacts"]),
    destroy=extend_schema(
        summary="Delete a contact",
        tags=["contacts"],
        description="Its conversations stay, without a contact.",
    ),
)
class ContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    TenantApiViewSet,
):
    queryset = Contact.objects.none()  # for the schema; get_queryset scopes
    serializer_class = ContactSerializer
    required_scopes = {
        "list": CONTACTS_READ,
        "retrieve": CONTACTS_READ,
        "by_external_id": CONTACTS_READ,
        "create": CONTACTS_WRITE,
        "partial_update": CONTACTS_WRITE,
        "destroy": CONTACTS_WRITE,
        "upsert": CONTACTS_WRITE,
    }
    lookup_value_regex = UUID_REGEX
    filterset_class = ContactFilter
    ordering_fields = ["created_at", "updated_at"]

    def get_queryset(self):
        return contacts_for(tenant=self.tenant, user=acting_user(self.request))

    def get_object(self) -> Contact:
        """By public id, or by `external_id` on the by-external-id routes (DRF's OPTIONS asks
        for the object too)."""
        if "external_id" not in self.kwargs:
            return super().get_object()
        external_id = self.kwargs["external_id"]
        contact = None
        if _valid_external_id(external_id):
            contact = self.get_queryset().filter(external_id=external_id).first()
        if contact is None:
            raise exceptions.NotFound("No contact has this external id.")
        self.check_object_permissions(self.request, contact)
        return contact

    def perform_create(self, serializer: ContactSerializer) -> None:
        serializer.instance = api_services.contact_create(
            tenant=self.tenant, **serializer.validated_data
        )

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ContactSerializer(self.get_object(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        contact = api_services.contact_update(
            contact=serializer.instance, **serializer.validated_data
        )
        return Response(ContactSerializer(contact).data)

    def perform_destroy(self, instance: Contact) -> None:
        api_services.contact_delete(contact=instance)

    @extend_schema(
        summary="Get a contact by your external id",
        tags=["contacts"],
        parameters=[EXTERNAL_ID_PARAMETER],
        responses=ContactSerializer,
    )
    @action(detail=False, methods=["get"], url_path="by-external-id/(?P<external_id>[^/]+)")
    def by_external_id(self, request: Request, external_id: str = "") -> Response:
        return Response(ContactSerializer(self.get_object()).data)

    @extend_schema(
        summary="Create or update a contact by your external id",
        tags=["contacts"],
        parameters=[EXTERNAL_ID_PARAMETER],
        request=ContactUpsertSerializer,
        responses={200: ContactSerializer, 201: ContactSerializer},
        description=(
            "Creates the contact (201) or sets the fields sent on the existing one (200); "
            "fields not sent are left as they are. `attributes` is replaced as a whole."
        ),
    )
    @by_external_id.mapping.put
    def upsert(self, request: Request, external_id: str = "") -> Response:
        if not _valid_external_id(external_id):
            raise exceptions.ValidationError({"external_id": ["1 to 255 characters, no NUL."]})
        contact, created = api_services.contact_upsert(
            tenant=self.tenant, external_id=external_id, **self.validated(ContactUpsertSerializer)
        )
        return Response(
            ContactSerializer(contact).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema_view(
    list=extend_schema(
        summary="List a contact's conversations",
        tags=["contacts"],
        parameters=[_conversation_path_parameter("contact_id")],
    )
)
class ContactConversationViewSet(mixins.ListModelMixin, TenantApiViewSet):
    queryset = Conversation.objects.none()  # for the schema; get_queryset scopes
    serializer_class = ConversationSerializer
    required_scopes = {"list": [Scope.CONTACTS_READ, Scope.CONVERSATIONS_READ]}
    filterset_class = ConversationFilter
    ordering_fields = ["created_at", "updated_at"]

    def get_queryset(self):
        user = acting_user(self.request)
        contact = contacts_for(tenant=self.tenant, user=user).filter(
            public_id=self.kwargs["contact_id"]
        )
        if not contact.exists():
            raise exceptions.NotFound("No such contact.")
        return conversations_for(tenant=self.tenant, user=user).filter(contact__in=contact)


# --- Feedback and questions -----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List feedback", tags=["feedback"]),
    create=extend_schema(
        summary="Record feedback",
        tags=["feedback"],
        request=FeedbackCreateSerializer,
        responses={201: FeedbackSerializer},
        description=(
            "Thumbs (`up`/`down`) on an assistant answer (`message_id`), or the conversation's "
            "CSAT (`1`-`5`) without one. A second vote replaces the first. Records "
            "`feedback.received`."
        ),
    ),
)
class FeedbackViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, TenantApiViewSet):
    queryset = Feedback.objects.none()  # for the schema; get_queryset scopes
    serializer_class = FeedbackSerializer
    required_scopes = {"list": READ, "create": WRITE}
    filterset_class = FeedbackFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        visible = conversations_for(tenant=self.tenant, user=acting_user(self.request))
        return (
            Feedback.objects.for_tenant(self.tenant)
            .filter(conversation__in=visible.values("pk"))
            .select_related("conversation")
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.validated(FeedbackCreateSerializer)
        feedback = api_services.feedback_create(
            conversation=_conversation_or_404(self, data["conversation_id"]),
            rating=data["rating"],
            message_id=data.get("message_id"),
            comment=data.get("comment", ""),
        )
        return Response(FeedbackSerializer(feedback).data, status=status.HTTP_201_CREATED)


class AskViewSet(TenantCommandViewSet):
    serializer_class = AskSerializer
    required_scopes = {"create": WRITE}

    @extend_schema(
        summary="Ask the assistant (one-shot, not streamed)",
        tags=["assistant"],
        request=AskSerializer,
        responses={200: AskAnswerSerializer},
        description=(
            "Retrieves from the knowledge base and answers with citations, waiting for the "
            "whole answer. Without `conversation_id` a new API conversation is started. When "
            "the language model is unavailable the answer quotes the best passages "
            "(`decision: extractive`); when nothing relevant is found the conversation is "
            "handed off to a person (`handed_off: true`)."
        ),
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.validated(AskSerializer)
        conversation = None
        if data.get("conversation_id"):
            conversation = _conversation_or_404(self, data["conversation_id"])
        conversation, question, answer = api_services.ask(
            tenant=self.tenant,
            question=data["question"],
            conversation=conversation,
            access_groups=data.get("access_groups"),
        )
        body = {
            "conversation_id": conversation.public_id,
            "conversation_status": conversation.status,
            "question": question,
            "answer": answer,
            "decision": answer.decision if answer else "",
            "handed_off": bool(answer and answer.decision == "handoff"),
        }
        return Response(AskAnswerSerializer(body).data)


router = SimpleRouter()
router.register("conversations", ConversationViewSet, basename="conversation")
router.register(
    f"conversations/(?P<conversation_id>{UUID_REGEX})/messages",
    MessageViewSet,
    basename="conversation-message",
)
router.register("contacts", ContactViewSet, basename="contact")
router.register(
    f"contacts/(?P<contact_id>{UUID_REGEX})/conversations",
    ContactConversationViewSet,
    basename="contact-conversation",
)
router.register("feedback", FeedbackViewSet, basename="feedback")
router.register("ask", AskViewSet, basename="ask")
