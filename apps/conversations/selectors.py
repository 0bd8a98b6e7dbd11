"""Reads for contacts, conversations and messages, and the wire shapes of a message."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

from apps.conversations.models import Contact, Conversation, Message, MessageRole
from apps.core import permissions
from apps.tenants.models import Role

# Which conversations of a tenant a person may see is decided by the workspace's inbox grants.
# The workspace sits above this app, so it registers its rule at start-up (WorkspaceConfig.ready)
# instead of being imported from here.
VisibilityRule = Callable[..., QuerySet[Conversation]]
_visibility_rule: VisibilityRule | None = None


# Whether the team is in (office hours of the inbox a conversation is, or would be, in): the
# workspace registers it too. None from the rule (or no rule): nothing to tell the widget.
TeamAvailability = Callable[..., dict[str, Any] | None]
_team_availability: TeamAvailability | None = None


def team_availability_register(rule: TeamAvailability | None) -> None:
    """Set `rule(conversation=) -> {"available": bool, "back_at": iso | None} | None`; the
    conversation may be an unsaved draft (a widget that has not started one yet)."""
    global _team_availability
    _team_availability = rule


def team_availability(*, conversation: Conversation) -> dict[str, Any] | None:
    return _team_availability(conversation=conversation) if _team_availability else None


def conversation_visibility_register(rule: VisibilityRule) -> None:
    """Set the rule `rule(user=, tenant=) -> conversations of tenant the user may see`."""
    global _visibility_rule
    _visibility_rule = rule


def conversation_get(*, tenant: Any, public_id: str | uuid.UUID) -> Conversation | None:
    """The tenant's conversation with this public id, or None (also for malformed ids)."""
    try:
        public_id = uuid.UUID(str(public_id))
    except (ValueError, TypeError):
        return None
    return (
        Conversation.objects.for_tenant(tenant)
        .select_related("contact", "assigned_agent")
        .filter(public_id=public_id)
        .first()
    )


def conversation_list(*, tenant: Any, status: str | None = None) -> QuerySet[Conversation]:
    queryset = Conversation.objects.for_tenant(tenant).select_related("contact", "assigned_agent")
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def conversations_for(*, tenant: Any, user: Any) -> QuerySet[Conversation]:
    """Conversations of `tenant` the caller may see.

    `user` is the signed-in person, or None for a tenant's API key (whose scopes already cover
    the whole tenant). People see the conversations of the inboxes they are granted; owners and
    admins see all of them.
    """
    if user is None:
        return conversation_list(tenant=tenant)
    if _visibility_rule is None:
        raise ImproperlyConfigured("No conversation visibility rule; is apps.workspace installed?")
    return _visibility_rule(user=user, tenant=tenant).select_related("contact", "assigned_agent")


def conversation_get_for(
    *, tenant: Any, user: Any, public_id: str | uuid.UUID
) -> Conversation | None:
    """The conversation with this public id if the caller may see it (see `conversations_for`)."""
    try:
        public_id = uuid.UUID(str(public_id))
    except (ValueError, TypeError):
        return None
    return conversations_for(tenant=tenant, user=user).filter(public_id=public_id).first()


def contacts_for(*, tenant: Any, user: Any) -> QuerySet[Contact]:
    """Contacts of `tenant` the caller may see: all for keys and admins; for agents, the
    contacts of conversations they may see."""
    contacts = Contact.objects.for_tenant(tenant)
    if user is None or permissions.has_role(user=user, tenant=tenant, role=Role.ADMIN):
        return contacts
    visible = conversations_for(tenant=tenant, user=user).exclude(contact=None)
    return contacts.filter(pk__in=visible.values("contact_id"))


def conversation_user_may_work(*, conversation: Conversation, user: Any) -> bool:
    """Whether the person may see (and so answer or be given) this conversation."""
    return (
        conversations_for(tenant=conversation.tenant, user=user).filter(pk=conversation.pk).exists()
    )


def contact_get_by_external_id(*, tenant: Any, external_id: str) -> Contact | None:
    if not external_id:
        return None
    return Contact.objects.for_tenant(tenant).filter(external_id=external_id).first()


def messages_after(
    *, conversation: Conversation, since: int | None = None, limit: int = 500
) -> list[Message]:
    """Messages numbered above `since` (a `seq`; all of them when None), oldest first.

    With no cursor the newest `limit` messages are returned, so a long conversation replays
    its recent part instead of everything.
    """
    queryset = Message.objects.for_tenant(conversation.tenant_id).filter(conversation=conversation)
    if since is not None:
        return list(queryset.filter(seq__gt=since).order_by("seq")[:limit])
    newest = list(queryset.order_by("-seq")[:limit])
    return newest[::-1]


def message_get(*, conversation: Conversation, message_id: int) -> Message | None:
    """A message of the conversation by its primary key (the REST API's id)."""
    return (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, id=message_id)
        .first()
    )


def message_by_seq(*, conversation: Conversation, seq: int) -> Message | None:
    """A message of the conversation by its number in it (the chat protocol's id)."""
    return (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, seq=seq)
        .first()
    )


def message_by_client_id(*, conversation: Conversation, client_id: str) -> Message | None:
    return (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, client_id=client_id)
        .first()
    )


def history_for_prompt(*, conversation: Conversation, before_id: int, turns: int) -> list[Message]:
    """The last `turns` customer/assistant/agent messages before `before_id`, oldest first."""
    queryset = (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, id__lt=before_id)
        .filter(role__in=[MessageRole.CUSTOMER, MessageRole.ASSISTANT, MessageRole.AGENT])
        .exclude(content="")
        .order_by("-id")
    )
    return list(queryset[:turns])[::-1]


def citation_wire(citation: dict[str, Any]) -> dict[str, Any]:
    """What the customer sees of a citation (internal ids and scores stay on the server)."""
    return {
        "n": citation.get("n"),
        "title": citation.get("title") or "",
        "url": citation.get("url") or None,
        "snippet": citation.get("snippet") or "",
    }


# What the answer engine records in `Message.grounding["outcome"]`; anything else reads "other".
GROUNDING_OUTCOMES = (
    "grounded",
    "fell_back",
    "extractive",
    "generative",
    "declined",
    "chitchat",
    "handoff",
    "action",
)
DROPPED_MAX = 20


def grounding_outcome(message: Message) -> str | None:
    """The message's grounding outcome: one of GROUNDING_OUTCOMES, "other", or None if unset."""
    grounding = message.grounding if isinstance(message.grounding, dict) else {}
    outcome = grounding.get("outcome")
    if not outcome:
        return None
    return outcome if outcome in GROUNDING_OUTCOMES else "other"


def grounding_wire(message: Message) -> dict[str, Any] | None:
    """What the groundedness guard did to an assistant answer, for agents and integrators:
    the outcome, why, and the sentences it kept from the customer. None when nothing was
    recorded (customer, agent and system messages; answers from before the answer engine).

    The engine's internal signals stay on the server; they change with calibration.
    """
    grounding = message.grounding if isinstance(message.grounding, dict) else {}
    outcome = grounding_outcome(message)
    if outcome is None:
        return None
    dropped = grounding.get("dropped") if isinstance(grounding.get("dropped"), list) else []
    return {
        "outcome": outcome,
        "reason": str(grounding.get("reason") or ""),
        "dropped": [
            {"sentence": str(d.get("sentence") or ""), "reason": str(d.get("reason") or "")}
            for d in dropped[:DROPPED_MAX]
            if isinstance(d, dict)
        ],
    }


def answer_engine_wire(message: Message) -> dict[str, Any]:
    """How the answer engine made the message: strategy, answerability (0-1), grounding."""
    answerability = message.answerability
    return {
        "strategy": message.strategy or "",
        "answerability": round(float(answerability), 4) if answerability is not None else None,
        "grounding": grounding_wire(message),
    }


def message_event_payload(message: Message) -> dict[str, Any]:
    """The `message.created` event (and webhook) payload of a message."""
    return {
        "conversation_id": str(message.conversation.public_id),
        "message_id": message.pk,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "citations": message.citations,
        "decision": message.decision,
        "created_at": message.created_at.isoformat(),
        **answer_engine_wire(message),
    }


def message_wire(message: Message) -> dict[str, Any]:
    """A message as the chat protocol sends it (docs/websocket.md); its id is the message's
    number within the conversation, never the primary key."""
    wire = {
        "id": message.seq,
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "citations": [citation_wire(c) for c in message.citations or []],
        "client_id": message.client_id,
        "status": message.status,
    }
    action = (message.grounding or {}).get("action")
    if isinstance(action, dict) and action.get("call_id"):
        # An action that changes data waits for the customer's confirm frame (apps/actions).
        wire["action"] = {
            "call_id": str(action["call_id"]),
            "title": str(action.get("title") or ""),
            "state": str(action.get("state") or "pending"),
        }
    return wire
