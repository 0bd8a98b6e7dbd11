"""Writes for the agent workspace: inboxes and grants, take-over, replies, hand-back,
resolution, bulk assignment. Corrections are in `corrections`, inbox settings and routing rules
in `inbox_settings`.

Chat state changes go through the chat app's services (`apps.conversations.services`), which
record the domain events and push the protocol frames the widget understands; this module adds
the checks an agent console needs (grants, one agent per conversation) and the console's own
queue notifications (`apps.core.realtime.console_*`).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from apps.conversations import services as chat_services
from apps.conversations.models import Conversation, ConversationStatus, Message
from apps.core import permissions, realtime
from apps.core.errors import ApplicationError, ConflictError, NotFoundError
from apps.tenants.models import Tenant
from apps.workspace import selectors
from apps.workspace.models import WORK_INBOX, ConversationInbox, Inbox
from apps.workspace.queue import queue_changed


def _name(user: Any) -> str:
    return getattr(user, "name", "") or user.get_username()


# --- Inboxes ------------------------------------------------------------------------------------


def inbox_default_ensure(*, tenant: Tenant) -> Inbox:
    """The tenant's default inbox, created when it has none yet (safe under races)."""
    if tenant is None:
        raise ApplicationError("An inbox needs a tenant.")
    found = Inbox.objects.for_tenant(tenant).filter(is_default=True).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return Inbox.objects.create(
                tenant=tenant, name=selectors.DEFAULT_INBOX_NAME, is_default=True
            )
    except IntegrityError:
        return Inbox.objects.for_tenant(tenant).get(is_default=True)


def inbox_create(*, tenant: Tenant, name: str) -> Inbox:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("An inbox needs a name.")
    if Inbox.objects.for_tenant(tenant).filter(name=name).exists():
        raise ConflictError(f"There is already an inbox named {name!r}.")
    return Inbox.objects.create(tenant=tenant, name=name)


def inbox_grant(*, inbox: Inbox, agent: Any) -> None:
    """Let `agent` (a member of the inbox's tenant) work the inbox's conversations."""
    try:
        permissions.grant(user=agent, perm=WORK_INBOX, obj=inbox)
    except ValueError as exc:
        raise ApplicationError(str(exc)) from exc


def inbox_revoke(*, inbox: Inbox, agent: Any) -> None:
    permissions.revoke(user=agent, perm=WORK_INBOX, obj=inbox)


def conversation_route(*, conversation: Conversation, inbox: Inbox) -> ConversationInbox:
    """Put the conversation into `inbox` (of the same tenant)."""
    if inbox.tenant_id != conversation.tenant_id:
        raise NotFoundError("No such inbox.")
    route, _ = ConversationInbox.objects.update_or_create(
        tenant_id=conversation.tenant_id, conversation=conversation, defaults={"inbox": inbox}
    )
    if conversation.status == ConversationStatus.WAITING_FOR_HUMAN:
        queue_changed(conversation, event="routed")
    return route


# --- Take-over, replies, hand-back, resolution ------------------------------------------------


def require_visible(*, user: Any, conversation: Conversation) -> None:
    if not selectors.can_work(user=user, conversation=conversation):
        raise NotFoundError("No such conversation.")


def _lock(conversation: Conversation) -> Conversation:
    return (
        Conversation.objects.select_for_update()
        .select_related("tenant")
        .get(tenant_id=conversation.tenant_id, pk=conversation.pk)
    )


@transaction.atomic
def conversation_take_over(*, conversation: Conversation, agent: Any) -> Conversation:
    """The agent takes the conversation; refused when another agent already has it.

    The row is locked, so of two agents pressing "take over" at once exactly one wins.
    """
    require_visible(user=agent, conversation=conversation)
    locked = _lock(conversation)
    if locked.status == ConversationStatus.WITH_AGENT and locked.assigned_agent_id:
        if locked.assigned_agent_id == agent.pk:
            return locked
        raise ConflictError(
            f"{_name(locked.assigned_agent)} has already taken over this conversation.",
            {"agent": _name(locked.assigned_agent)},
            code="already_taken",
        )
    # The chat app's service sets the status and tells the widget that an agent joined.
    conversation = chat_services.conversation_assign(conversation=locked, agent=agent)
    queue_changed(conversation, event="taken")
    return conversation


def _require_owner(*, conversation: Conversation, agent: Any) -> Conversation:
    locked = _lock(conversation)
    if locked.status == ConversationStatus.WITH_AGENT and locked.assigned_agent_id != agent.pk:
        other = locked.assigned_agent
        raise ConflictError(
            f"{_name(other) if other else 'Another agent'} has this conversation.",
            code="already_taken",
        )
    return locked


@transaction.atomic
def agent_reply(*, conversation: Conversation, agent: Any, content: str) -> Message:
    """The agent's reply, sent to the customer live; takes the conversation if nobody has it."""
    require_visible(user=agent, conversation=conversation)
    locked = _require_owner(conversation=conversation, agent=agent)
    if locked.status != ConversationStatus.WITH_AGENT:
        locked = conversation_take_over(conversation=locked, agent=agent)
    message = chat_services.message_post_agent(conversation=locked, agent=agent, content=content)
    tenant_id, pk, name = locked.tenant_id, locked.pk, _name(agent)
    transaction.on_commit(
        lambda: realtime.chat_typing_send(
            tenant_id=tenant_id, conversation_id=pk, role="agent", active=False, name=name
        )
    )
    return message


@transaction.atomic
def conversation_hand_back(*, conversation: Conversation, agent: Any) -> Conversation:
    """Give the conversation back to the assistant, which answers the next message again."""
    require_visible(user=agent, conversation=conversation)
    locked = _require_owner(conversation=conversation, agent=agent)
    if locked.status not in (ConversationStatus.WITH_AGENT, ConversationStatus.WAITING_FOR_HUMAN):
        raise ApplicationError("Only a conversation with a person can be handed back.")
    Conversation.objects.for_tenant(locked.tenant_id).filter(pk=locked.pk).update(
        status=ConversationStatus.OPEN, assigned_agent=None, handoff_reason=""
    )
    locked.refresh_from_db()
    chat_services.message_post_system(
        conversation=locked, content=HAND_BACK_TEXT.format(agent=_name(agent))
    )
    tenant_id, pk, public_id = locked.tenant_id, locked.pk, str(locked.public_id)
    transaction.on_commit(
        lambda: realtime.chat_status_send(
            tenant_id=tenant_id,
            conversation_id=pk,
            status=ConversationStatus.OPEN,
            conversation_public_id=public_id,
        )
    )
    queue_changed(locked, event="handed_back")
    return locked


HAND_BACK_TEXT = "{agent} handed the conversation back to the assistant. Ask away!"


@transaction.atomic
def conversation_close(*, conversation: Conversation, agent: Any) -> Conversation:
    """Resolve the conversation (the widget then asks for a rating)."""
    require_visible(user=agent, conversation=conversation)
    _require_owner(conversation=conversation, agent=agent)
    resolved = chat_services.conversation_resolve(conversation=conversation, by=agent)
    queue_changed(resolved, event="resolved")
    return resolved


@transaction.atomic
def conversations_resolve_bulk(*, conversations: list[Conversation], by: Any) -> int:
    """The admin's bulk action: resolve each (already visible) conversation."""
    count = 0
    for conversation in conversations:
        if conversation.status != ConversationStatus.RESOLVED:
            chat_services.conversation_resolve(conversation=conversation, by=by)
            queue_changed(conversation, event="resolved")
            count += 1
    return count


@transaction.atomic
def conversations_assign_bulk(*, conversations: list[Conversation], agent: Any, by: Any) -> int:
    """Assign conversations to `agent`, who must be able to work each of them."""
    for conversation in conversations:
        if not selectors.can_work(user=agent, conversation=conversation):
            raise ApplicationError(
                f"{_name(agent)} cannot work conversation {conversation.public_id} "
                "(not a member of its tenant, or no grant on its inbox)."
            )
    for conversation in conversations:
        assigned = chat_services.conversation_assign(conversation=conversation, agent=agent)
        queue_changed(assigned, event="taken")
    return len(conversations)


def agent_typing(*, conversation: Conversation, agent: Any, active: bool) -> None:
    realtime.chat_typing_send(
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.pk,
        role="agent",
        active=active,
        name=_name(agent),
    )
