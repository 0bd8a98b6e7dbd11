"""Writes for contacts, conversations and messages (feedback is in `feedback`).

Every change that other people should see live is pushed through `apps.core.realtime` once the
transaction commits, and every domain event is recorded in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.conversations.models import (
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    HandoffReason,
    Message,
    MessageRole,
    MessageStatus,
)
from apps.conversations.selectors import (
    message_by_client_id,
    message_event_payload,
    message_wire,
)
from apps.core import realtime
from apps.core.errors import ApplicationError
from apps.events.models import EventType
from apps.events.services import event_record

MAX_CLIENT_ID_LENGTH = 64
MAX_PAGE_URL_LENGTH = 2000
MAX_CONTEXT_CLAIMS = 20
# Standard token claims (and the customer's identity) say nothing a routing rule should use.
_UNROUTED_CLAIMS = frozenset({"sub", "exp", "iat", "nbf", "iss", "aud", "jti", "email", "name"})

# Routing rules, inboxes and assignment live in the workspace, a layer above this app; it
# registers its router at start-up (WorkspaceConfig.ready), as it does the visibility rule.
RoutingMoment = Literal["start", "message", "handoff", "assigned"]
Router = Callable[..., None]
_router: Router | None = None


def conversation_router_register(router: Router | None) -> None:
    """Set `router(conversation=, moment=, text=)`, called inside the transaction of every
    conversation start, customer message, handoff and assignment to an agent."""
    global _router
    _router = router


def _route(conversation: Conversation, *, moment: RoutingMoment, text: str = "") -> None:
    if _router is not None:
        _router(conversation=conversation, moment=moment, text=text)


def _after_commit(callback: Any) -> None:
    transaction.on_commit(callback)


def _message_event_payload(message: Message) -> dict[str, Any]:
    return message_event_payload(message)


def _push_message(message: Message) -> None:
    conversation = message.conversation
    wire = message_wire(message)
    _after_commit(
        lambda: realtime.chat_message_send(
            tenant_id=conversation.tenant_id,
            conversation_id=conversation.pk,
            message=wire,
            conversation_public_id=str(conversation.public_id),
        )
    )


# --- Contacts and conversations ---------------------------------------------------------------


def contact_get_or_create(
    *,
    tenant: Any,
    external_id: str,
    email: str = "",
    name: str = "",
    attributes: dict | None = None,
) -> Contact:
    """The tenant's contact with this external id, created (or its details updated) as needed."""
    external_id = (external_id or "").strip()[:255]
    if not external_id:
        raise ApplicationError("A contact needs an external id.", code="invalid")
    defaults = {k: v for k, v in {"email": email, "name": name}.items() if v}
    try:
        with transaction.atomic():
            contact, created = Contact.objects.get_or_create(
                tenant=tenant, external_id=external_id, defaults={**defaults}
            )
    except IntegrityError:
        # Two connections of the same customer raced; the other one created the row.
        contact, created = Contact.objects.get(tenant=tenant, external_id=external_id), False
    changed = []
    for field, value in defaults.items():
        if getattr(contact, field) != value:
            setattr(contact, field, value)
            changed.append(field)
    if attributes:
        contact.attributes = {**contact.attributes, **attributes}
        changed.append("attributes")
    if changed and not created:
        contact.save(update_fields=[*changed, "updated_at"])
    return contact


def contact_from_claims(*, tenant: Any, claims: dict[str, Any]) -> Contact:
    """The contact an end-user token names (its `sub`, plus optional email and name claims)."""
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    name = claims.get("name") if isinstance(claims.get("name"), str) else ""
    return contact_get_or_create(
        tenant=tenant, external_id=claims["sub"], email=email[:254], name=name[:200]
    )


@transaction.atomic
def conversation_start(
    *,
    tenant: Any,
    widget_key: Any = None,
    contact: Contact | None = None,
    channel: str = Channel.WIDGET,
    language: str = "",
    access_groups: Iterable[str] = (),
    page_url: str = "",
    claims: dict[str, Any] | None = None,
) -> Conversation:
    conversation = Conversation.objects.create(
        tenant=tenant,
        widget_key=widget_key,
        contact=contact,
        channel=Channel(channel),
        language=(language or "")[:16],
        access_groups=sorted({str(g) for g in access_groups}),
        context=routing_context(page_url=page_url, claims=claims),
    )
    event_record(
        tenant=tenant,
        type=EventType.CONVERSATION_CREATED,
        payload={
            "conversation_id": str(conversation.public_id),
            "channel": conversation.channel,
            "contact_id": str(contact.public_id) if contact else None,
            "contact_external_id": contact.external_id if contact else None,
            "language": conversation.language,
        },
    )
    _route(conversation, moment="start")
    return conversation


@transaction.atomic
def conversation_identify(
    *, conversation: Conversation, claims: dict[str, Any], access_groups: Iterable[str] = ()
) -> bool:
    """The visitor of an anonymous conversation signed in (the page now passes their end-user
    token, already verified into `claims` and its `access_groups`): the conversation becomes
    theirs, with the contact, the claims routing and actions read, and those access groups. A
    conversation that already has a contact keeps it (`access.authorize` refuses anyone else).
    Returns whether the conversation changed; the instance is updated either way."""
    scoped = Conversation.objects.for_tenant(conversation.tenant_id)
    locked = scoped.select_for_update().get(pk=conversation.pk)
    changed = locked.contact_id is None
    if changed:
        locked.contact = contact_from_claims(tenant=locked.tenant, claims=claims)
        locked.context = {
            **(locked.context or {}),
            "claims": routing_context(claims=claims)["claims"],
        }
        locked.access_groups = sorted({*locked.access_groups, *map(str, access_groups)})
        locked.save(update_fields=["contact", "context", "access_groups", "updated_at"])
    conversation.contact = locked.contact
    conversation.context, conversation.access_groups = locked.context, locked.access_groups
    return changed


def _context_value(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value[:200]
    if isinstance(value, list):
        return [str(v)[:200] for v in value[:50] if isinstance(v, str | int | float)]
    return None


def routing_context(*, page_url: str = "", claims: dict[str, Any] | None = None) -> dict[str, Any]:
    """What routing rules may look at: the page and the token's own claims (plain values only)."""
    kept: dict[str, Any] = {}
    for name, value in (claims or {}).items():
        if len(kept) >= MAX_CONTEXT_CLAIMS:
            break
        if name in _UNROUTED_CLAIMS or not isinstance(name, str) or len(name) > 64:
            continue
        cleaned = _context_value(value)
        if cleaned is not None:
            kept[name] = cleaned
    page_url = page_url if isinstance(page_url, str) else ""
    return {"page_url": page_url.strip()[:MAX_PAGE_URL_LENGTH], "claims": kept}


def _touch(conversation: Conversation, when: Any) -> None:
    Conversation.objects.for_tenant(conversation.tenant_id).filter(pk=conversation.pk).update(
        last_message_at=when
    )
    conversation.last_message_at = when


# --- Messages -------------------------------------------------------------------------------------


def message_post_customer(
    *, conversation: Conversation, text: str, client_id: str | None = None
) -> tuple[Message, bool]:
    """Store the customer's message (once per client_id) and push it to the conversation.

    Returns the message and whether it was created; a repeated client_id returns the stored one.
    A customer writing into a resolved conversation reopens it.
    """
    if client_id is not None and (not client_id or len(client_id) > MAX_CLIENT_ID_LENGTH):
        raise ApplicationError("client_id must be 1 to 64 characters.", code="invalid")
    if client_id:
        existing = message_by_client_id(conversation=conversation, client_id=client_id)
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            message = Message.objects.create(
                tenant_id=conversation.tenant_id,
                conversation=conversation,
                role=MessageRole.CUSTOMER,
                content=text,
                client_id=client_id or None,
            )
            _touch(conversation, message.created_at)
            if conversation.status == ConversationStatus.RESOLVED:
                _set_status(conversation, ConversationStatus.OPEN, resolved_at=None)
                tenant_id, pk, public_id = (
                    conversation.tenant_id,
                    conversation.pk,
                    conversation.public_id,
                )
                _after_commit(
                    lambda: realtime.chat_status_send(
                        tenant_id=tenant_id,
                        conversation_id=pk,
                        status=ConversationStatus.OPEN,
                        conversation_public_id=str(public_id),
                    )
                )
            event_record(
                tenant=conversation.tenant,
                type=EventType.MESSAGE_CREATED,
                payload=_message_event_payload(message),
            )
            _push_message(message)
            # A rule on the question's words may send it to a person before any answer; a
            # customer waiting out of office hours may be leaving their email address.
            _route(conversation, moment="message", text=text)
    except IntegrityError:
        existing = message_by_client_id(conversation=conversation, client_id=client_id or "")
        if existing is None:
            raise
        return existing, False
    return message, True


@transaction.atomic
def message_post_system(*, conversation: Conversation, content: str) -> Message:
    """A notice from SupportAI itself (handoff offers, failures); not a domain event."""
    message = Message.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        role=MessageRole.SYSTEM,
        content=content,
    )
    _push_message(message)
    return message


@transaction.atomic
def message_post_agent(*, conversation: Conversation, agent: Any, content: str) -> Message:
    """An agent's reply. The agent takes the conversation if nobody has it yet."""
    content = (content or "").strip()
    if not content:
        raise ApplicationError("The reply is empty.", code="invalid")
    if conversation.status != ConversationStatus.WITH_AGENT:
        conversation_assign(conversation=conversation, agent=agent)
    message = Message.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        role=MessageRole.AGENT,
        content=content,
        author=agent,
    )
    _touch(conversation, message.created_at)
    event_record(
        tenant=conversation.tenant,
        type=EventType.MESSAGE_CREATED,
        payload=_message_event_payload(message),
    )
    _push_message(message)
    return message


def assistant_message_start(*, conversation: Conversation, model: str = "") -> Message:
    """The row an answer streams into; its id is what `token` frames refer to."""
    return Message.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        role=MessageRole.ASSISTANT,
        status=MessageStatus.STREAMING,
        model=model,
    )


def assistant_message_save_partial(*, message: Message, content: str) -> None:
    """Keep what has streamed so far, so a crash of this process loses at most a moment."""
    Message.objects.for_tenant(message.tenant_id).filter(
        pk=message.pk, status=MessageStatus.STREAMING
    ).update(content=content)


ANSWER_FIELDS = (
    "content",
    "status",
    "citations",
    "decision",
    "model",
    "prompt_version",
    "retrieval_ms",
    "first_token_ms",
    "total_ms",
    "prompt_tokens",
    "completion_tokens",
    "tokens_estimated",
    "retrieval",
    "strategy",
    "answerability",
    "grounding",
)


@transaction.atomic
def assistant_message_finish(*, message: Message, **fields: Any) -> Message:
    """Store the final answer (complete, or failed with what had streamed) and its metrics."""
    unknown = set(fields) - set(ANSWER_FIELDS)
    if unknown:
        raise TypeError(f"unknown answer fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(message, name, value)
    message.save(update_fields=[*fields, "updated_at"])
    _touch(message.conversation, timezone.now())
    event_record(
        tenant=message.conversation.tenant,
        type=EventType.MESSAGE_CREATED,
        payload=_message_event_payload(message),
    )
    return message


# --- Handoff and resolution -----------------------------------------------------------------------


def _set_status(conversation: Conversation, status: str, **extra: Any) -> None:
    conversation.status = status
    for name, value in extra.items():
        setattr(conversation, name, value)
    conversation.save(update_fields=["status", *extra, "updated_at"])


@transaction.atomic
def handoff_request(*, conversation: Conversation, reason: str) -> bool:
    """Put the conversation in the queue for a person. False if a person already has it."""
    reason = HandoffReason(reason)
    conversation = Conversation.objects.select_for_update().get(
        tenant_id=conversation.tenant_id, pk=conversation.pk
    )
    if conversation.status in {ConversationStatus.WAITING_FOR_HUMAN, ConversationStatus.WITH_AGENT}:
        return False
    _set_status(
        conversation,
        ConversationStatus.WAITING_FOR_HUMAN,
        handoff_reason=reason,
        resolved_at=None,
    )
    event_record(
        tenant=conversation.tenant,
        type=EventType.HANDOFF_REQUESTED,
        payload={"conversation_id": str(conversation.public_id), "reason": reason.value},
    )
    tenant_id, pk, public_id = conversation.tenant_id, conversation.pk, conversation.public_id
    _after_commit(
        lambda: realtime.chat_handoff_send(
            tenant_id=tenant_id, conversation_id=pk, reason=reason.value
        )
    )
    _after_commit(
        lambda: realtime.chat_queue_notify(
            tenant_id=tenant_id, conversation_public_id=str(public_id), reason=reason.value
        )
    )
    # Into which inbox, and to whom: the workspace's rules and assignment decide.
    _route(conversation, moment="handoff", text=last_customer_text(conversation))
    return True


def last_customer_text(conversation: Conversation) -> str:
    return (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, role=MessageRole.CUSTOMER)
        .order_by("-id")
        .values_list("content", flat=True)
        .first()
        or ""
    )


@transaction.atomic
def conversation_assign(*, conversation: Conversation, agent: Any) -> Conversation:
    """An agent takes the conversation over; the assistant stays silent from now on."""
    conversation = Conversation.objects.select_for_update().get(
        tenant_id=conversation.tenant_id, pk=conversation.pk
    )
    previous_agent_id = conversation.assigned_agent_id
    _set_status(conversation, ConversationStatus.WITH_AGENT, assigned_agent=agent)
    name = getattr(agent, "display_name", "") or agent.get_username()
    tenant_id, pk = conversation.tenant_id, conversation.pk
    _after_commit(
        lambda: realtime.chat_agent_joined_send(
            tenant_id=tenant_id, conversation_id=pk, agent_name=name
        )
    )
    if previous_agent_id != conversation.assigned_agent_id:
        # The workspace tells an agent who is away by email.
        _route(conversation, moment="assigned")
    return conversation


@transaction.atomic
def conversation_resolve(*, conversation: Conversation, by: Any = None) -> Conversation:
    conversation = Conversation.objects.select_for_update().get(
        tenant_id=conversation.tenant_id, pk=conversation.pk
    )
    if conversation.status == ConversationStatus.RESOLVED:
        return conversation
    _set_status(conversation, ConversationStatus.RESOLVED, resolved_at=timezone.now())
    event_record(
        tenant=conversation.tenant,
        type=EventType.CONVERSATION_RESOLVED,
        payload={
            "conversation_id": str(conversation.public_id),
            "resolved_by": getattr(by, "pk", None),
        },
    )
    tenant_id, pk, public_id = conversation.tenant_id, conversation.pk, conversation.public_id

    def push() -> None:
        realtime.chat_status_send(
            tenant_id=tenant_id,
            conversation_id=pk,
            status=ConversationStatus.RESOLVED,
            conversation_public_id=str(public_id),
        )
        realtime.chat_csat_request_send(tenant_id=tenant_id, conversation_id=pk)

    _after_commit(push)
    return conversation
