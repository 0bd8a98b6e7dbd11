"""Writes the REST API needs on top of the chat services: contacts, status changes, ask.

Everything here is built on `apps.conversations.services` (which the chat consumer uses too),
so an agent reply or a resolution from the API reaches the customer's widget live and records
the same domain events as one made in the inbox.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from apps.conversations import answering, feedback, services
from apps.conversations.models import (
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Feedback,
    FeedbackKind,
    Message,
    MessageRole,
)
from apps.conversations.selectors import message_get
from apps.core import realtime
from apps.core.errors import ApplicationError, ConflictError
from apps.tenants.models import Membership

# The statuses a client may set with PATCH; a hand-off to the queue is the assistant's call.
SETTABLE_STATUSES = (
    ConversationStatus.OPEN,
    ConversationStatus.WITH_AGENT,
    ConversationStatus.RESOLVED,
)
MAX_DB_INTEGER = 2**63 - 1


# --- Contacts -------------------------------------------------------------------------------------


def _external_id_taken(*, tenant: Any, external_id: str, exclude_pk: int | None = None) -> bool:
    if not external_id:
        return False
    queryset = Contact.objects.for_tenant(tenant).filter(external_id=external_id)
    if exclude_pk is not None:
        queryset = queryset.exclude(pk=exclude_pk)
    return queryset.exists()


def _conflict(external_id: str) -> ConflictError:
    return ConflictError(
        "Another contact of this tenant has this external_id.",
        extra={"external_id": external_id},
    )


def contact_create(
    *,
    tenant: Any,
    external_id: str = "",
    email: str = "",
    name: str = "",
    attributes: dict[str, Any] | None = None,
) -> Contact:
    if _external_id_taken(tenant=tenant, external_id=external_id):
        raise _conflict(external_id)
    try:
        with transaction.atomic():
            return Contact.objects.create(
                tenant=tenant,
                external_id=external_id,
                email=email,
                name=name,
                attributes=attributes or {},
            )
    except IntegrityError as exc:  # created by a concurrent request after our check
        raise _conflict(external_id) from exc


def contact_update(*, contact: Contact, **fields: Any) -> Contact:
    """Change the given fields (external_id, email, name, attributes)."""
    external_id = fields.get("external_id")
    if external_id and _external_id_taken(
        tenant=contact.tenant_id, external_id=external_id, exclude_pk=contact.pk
    ):
        raise _conflict(external_id)
    for name, value in fields.items():
        setattr(contact, name, value)
    try:
        with transaction.atomic():
            contact.save(update_fields=[*fields, "updated_at"])
    except IntegrityError as exc:
        raise _conflict(external_id or "") from exc
    return contact


def contact_upsert(*, tenant: Any, external_id: str, **fields: Any) -> tuple[Contact, bool]:
    """The contact with this external id, created or with the given fields replaced.

    Fields not given keep their values (or their defaults on a new contact). Returns
    (contact, created).
    """
    if not external_id:
        raise ApplicationError("A contact needs an external id.", extra={"external_id": ""})
    for _ in range(2):
        try:
            with transaction.atomic():
                contact = (
                    Contact.objects.for_tenant(tenant)
                    .select_for_update()
                    .filter(external_id=external_id)
                    .first()
                )
                if contact is not None:
                    return contact_update(contact=contact, **fields), False
                contact = Contact.objects.create(
                    tenant=tenant,
                    external_id=external_id,
                    email=fields.get("email", ""),
                    name=fields.get("name", ""),
                    attributes=fields.get("attributes") or {},
                )
                return contact, True
        except IntegrityError:
            continue  # a concurrent upsert created it first; update that one
    raise _conflict(external_id)  # pragma: no cover


def contact_delete(*, contact: Contact) -> None:
    """Remove the contact; its conversations stay, without a contact."""
    Contact.objects.for_tenant(contact.tenant_id).filter(pk=contact.pk).delete()


# --- Conversations --------------------------------------------------------------------------------


def tenant_agent_find(*, tenant: Any, agent: str | int) -> Any:
    """The member of the tenant named by user id or email, or ApplicationError."""
    user_model = get_user_model()
    members = user_model.objects.filter(
        pk__in=Membership.objects.for_tenant(tenant).values("user_id"), is_active=True
    )
    value = str(agent).strip()
    user = None
    if value.isdigit():
        if int(value) <= MAX_DB_INTEGER:
            user = members.filter(pk=int(value)).first()
    elif value:
        user = members.filter(email__iexact=value).first()
    if user is None:
        raise ApplicationError(
            "No member of this tenant has that id or email.", extra={"agent": value}
        )
    return user


def conversation_status_set(
    *, conversation: Conversation, status: str, by: Any = None
) -> Conversation:
    """Open, give to its assigned agent, or resolve a conversation."""
    if status not in SETTABLE_STATUSES:
        raise ApplicationError(
            f"status can be set to {', '.join(SETTABLE_STATUSES)}.", extra={"status": status}
        )
    if status == conversation.status:
        return conversation
    if status == ConversationStatus.RESOLVED:
        return services.conversation_resolve(conversation=conversation, by=by)
    if status == ConversationStatus.WITH_AGENT:
        if conversation.assigned_agent is None:
            raise ApplicationError(
                "Nobody is assigned; assign an agent with POST …/assign/ first.",
                extra={"status": status},
            )
        return services.conversation_assign(
            conversation=conversation, agent=conversation.assigned_agent
        )
    return conversation_reopen(conversation=conversation)


@transaction.atomic
def conversation_reopen(*, conversation: Conversation) -> Conversation:
    """Back to the assistant: nobody assigned, not resolved."""
    conversation = (
        Conversation.objects.for_tenant(conversation.tenant_id)
        .select_for_update()
        .get(pk=conversation.pk)
    )
    conversation.status = ConversationStatus.OPEN
    conversation.assigned_agent = None
    conversation.resolved_at = None
    conversation.save(update_fields=["status", "assigned_agent", "resolved_at", "updated_at"])
    tenant_id, pk, public_id = conversation.tenant_id, conversation.pk, conversation.public_id
    transaction.on_commit(
        lambda: realtime.chat_status_send(
            tenant_id=tenant_id,
            conversation_id=pk,
            status=ConversationStatus.OPEN,
            conversation_public_id=str(public_id),
        )
    )
    return conversation


def agent_for_reply(*, conversation: Conversation, agent: str | int | None, user: Any) -> Any:
    """Who an API reply is from: the named member, the signed-in person, or the assignee."""
    if agent not in (None, ""):
        return tenant_agent_find(tenant=conversation.tenant, agent=agent)
    if user is not None:
        return user
    if conversation.assigned_agent is not None:
        return conversation.assigned_agent
    raise ApplicationError(
        "Name the agent who replies (`agent`: their user id or email); nobody is assigned.",
        extra={"agent": ""},
    )


# --- Feedback -------------------------------------------------------------------------------------


def feedback_create(
    *,
    conversation: Conversation,
    rating: str | int,
    message_id: int | None = None,
    comment: str = "",
) -> Feedback:
    """Thumbs on an assistant answer when a message is named; CSAT for the conversation else."""
    if message_id is None:
        return feedback.feedback_record(
            conversation=conversation, kind=FeedbackKind.CSAT, rating=rating, comment=comment
        )
    message = message_get(conversation=conversation, message_id=message_id)
    if message is None:
        raise ApplicationError(
            "No message with this id in the conversation.", extra={"message_id": message_id}
        )
    if message.role != MessageRole.ASSISTANT:
        raise ApplicationError(
            "Only assistant answers take thumbs.", extra={"message_id": message_id}
        )
    return feedback.feedback_record(
        conversation=conversation,
        kind=FeedbackKind.THUMBS,
        rating=rating,
        message=message,
        comment=comment,
    )


# --- One-shot questions ---------------------------------------------------------------------------


def ask(
    *,
    tenant: Any,
    question: str,
    conversation: Conversation | None = None,
    access_groups: list[str] | None = None,
) -> tuple[Conversation, Message, Message | None]:
    """Put a question to the assistant and wait for its whole answer (no streaming).

    A new API-channel conversation is started unless one is given; it keeps `access_groups`
    (an existing conversation keeps the groups it started with). Returns the conversation,
    the question's message and the assistant's final message (a hand-off notice when it hands
    off). The answer flow is the chat's own, so a watching agent sees it live.
    """
    question = (question or "").strip()
    if not question:
        raise ApplicationError("The question is empty.", extra={"question": ""})
    if conversation is None:
        conversation = services.conversation_start(
            tenant=tenant, channel=Channel.API, access_groups=access_groups or ()
        )
    elif not conversation.assistant_active:
        raise ConflictError(
            "A person has this conversation, so the assistant does not answer in it.",
            extra={"status": conversation.status},
        )
    message, _ = services.message_post_customer(conversation=conversation, text=question)
    async_to_sync(answering.answerer().answer_message)(
        conversation=conversation,
        message=message,
        access_groups=list(conversation.access_groups or []),
    )
    answer = (
        Message.objects.for_tenant(tenant)
        .filter(conversation=conversation, id__gt=message.pk, role=MessageRole.ASSISTANT)
        .order_by("-id")
        .first()
    )
    conversation.refresh_from_db()
    return conversation, message, answer
