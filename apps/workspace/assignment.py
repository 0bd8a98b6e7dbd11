"""Agents' presence and automatic assignment.

Presence comes from the console's websocket: a socket marks its agent seen when it connects
and every third of AGENT_PRESENCE_GRACE_SECONDS while it stays open; `presence_sweep` (Celery
beat) marks agents not seen for the grace period away and passes their conversations on.
An inbox with automatic assignment gives a waiting conversation to an online agent who holds a
grant on that inbox and has room (round robin or least busy); an agent assigned while away from
the console is told by email.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from apps.conversations import services as chat_services
from apps.conversations.models import Conversation, ConversationStatus
from apps.core import permissions, realtime
from apps.tenants.models import Membership, Tenant
from apps.workspace import office_hours, selectors
from apps.workspace.models import AgentPresence, AssignmentMode, Inbox, PresenceStatus
from apps.workspace.queue import queue_changed

logger = logging.getLogger(__name__)

# Assignment of waiting conversations when an agent comes online stops after this many.
FILL_BATCH = 50


def agent_is_online(*, tenant_id: int, user_id: int, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        AgentPresence.objects.for_tenant(tenant_id)
        .filter(user_id=user_id, status=PresenceStatus.ONLINE, last_seen_at__gte=now - _grace())
        .exists()
    )


def notify_if_away(conversation: Conversation) -> None:
    """A conversation given to an agent who is not at the console: tell them by email."""
    agent = conversation.assigned_agent
    if agent is None or not agent.email:
        return
    if agent_is_online(tenant_id=conversation.tenant_id, user_id=agent.pk):
        return  # the console notifies them (notice, tone, browser notification)
    # Celery pattern: tasks imports this module, so the task is imported when it is queued.
    from apps.workspace.tasks import notify_assigned_by_email

    tenant_id, pk, user_id = conversation.tenant_id, conversation.pk, agent.pk
    transaction.on_commit(lambda: notify_assigned_by_email.delay(tenant_id, pk, user_id))


def assigned_email_send(*, tenant: Tenant, conversation_id: int, user_id: int) -> bool:
    """Email the agent that the conversation is theirs, if it still is and they are still away.
    Returns whether an email was sent."""
    conversation = (
        Conversation.objects.for_tenant(tenant)
        .select_related("assigned_agent", "contact")
        .filter(pk=conversation_id, assigned_agent_id=user_id)
        .first()
    )
    if conversation is None or conversation.status != ConversationStatus.WITH_AGENT:
        return False
    agent = conversation.assigned_agent
    if permissions.membership_role(user=agent, tenant=tenant) is None or not agent.email:
        return False
    if agent_is_online(tenant_id=tenant.pk, user_id=agent.pk):
        return False
    last = chat_services.last_customer_text(conversation)
    who = str(conversation.contact) if conversation.contact_id else "A visitor"
    base = settings.PUBLIC_URL.rstrip("/")
    link = f"{base}/console/{tenant.slug}/?conversation={conversation.public_id}"
    body = (
        f"{who} is waiting for you in {tenant.name}.\n\n"
        + (f"Their last message:\n> {last[:1000]}\n\n" if last else "")
        + f"Open the conversation: {link}\n"
    )
    send_mail(
        subject=f"[{tenant.name}] A conversation was assigned to you",
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[agent.email],
        fail_silently=False,
    )
    return True


def _grace() -> timedelta:
    return timedelta(seconds=settings.AGENT_PRESENCE_GRACE_SECONDS)


def agent_presence_seen(*, tenant: Tenant, user: Any, now: datetime | None = None) -> bool:
    """A console socket of `user` is open now. Returns whether they just came online (and then
    hands them waiting conversations of their inboxes)."""
    if permissions.membership_role(user=user, tenant=tenant) is None:
        return False
    now = now or timezone.now()
    with transaction.atomic():
        presence, _ = AgentPresence.objects.for_tenant(tenant).get_or_create(
            tenant=tenant, user=user
        )
        presence = AgentPresence.objects.select_for_update().get(tenant=tenant, pk=presence.pk)
        came_online = not presence.away_by_choice and (
            presence.status != PresenceStatus.ONLINE
            or presence.last_seen_at is None
            or presence.last_seen_at < now - _grace()
        )
        if not presence.away_by_choice:
            presence.status = PresenceStatus.ONLINE
        presence.last_seen_at = now
        presence.save(update_fields=["status", "last_seen_at", "updated_at"])
    if came_online:
        assignment_fill(tenant=tenant, now=now)
    return came_online


def agent_presence_status(*, tenant: Tenant, user: Any) -> str:
    status = (
        AgentPresence.objects.for_tenant(tenant)
        .filter(user=user)
        .values_list("status", flat=True)
        .first()
    )
    return status or PresenceStatus.AWAY


def agent_presence_choose(*, tenant: Tenant, user: Any, away: bool) -> str:
    """The agent's own switch in the console: away (their automatically assigned conversations
    pass on, and none come until they are back) or back online. Returns the new status."""
    if permissions.membership_role(user=user, tenant=tenant) is None:
        return PresenceStatus.AWAY
    presence, _ = AgentPresence.objects.for_tenant(tenant).get_or_create(tenant=tenant, user=user)
    AgentPresence.objects.for_tenant(tenant).filter(pk=presence.pk).update(away_by_choice=away)
    if away:
        agent_presence_away(tenant=tenant, user=user)
        return PresenceStatus.AWAY
    agent_presence_seen(tenant=tenant, user=user)
    return PresenceStatus.ONLINE


@transaction.atomic
def agent_presence_away(*, tenant: Tenant, user: Any) -> int:
    """The agent is away (they said so, or their console went quiet): their conversations in
    inboxes with automatic assignment go to another online agent, or back to the queue.
    Returns how many conversations were passed on."""
    AgentPresence.objects.for_tenant(tenant).filter(user=user).update(
        status=PresenceStatus.AWAY, updated_at=timezone.now()
    )
    theirs = (
        Conversation.objects.for_tenant(tenant)
        .filter(status=ConversationStatus.WITH_AGENT, assigned_agent=user)
        .select_related("tenant")
        .order_by("pk")
    )
    passed = 0
    for conversation in theirs:
        inbox = selectors.conversation_inbox(conversation=conversation)
        if inbox.assignment == AssignmentMode.MANUAL:
            continue  # they took it by hand from a manual inbox: it stays theirs
        if assign_next(conversation=conversation, inbox=inbox, exclude=[user.pk]) is None:
            _back_to_queue(conversation)
        passed += 1
    return passed


def presence_sweep(*, now: datetime | None = None) -> int:
    """Mark agents whose consoles went quiet for the grace period away (every tenant), then
    hand out conversations still waiting in inboxes with automatic assignment (an agent may
    have room again after resolving some). Returns how many agents went away."""
    now = now or timezone.now()
    stale = list(
        AgentPresence.objects.unscoped()
        .filter(status=PresenceStatus.ONLINE, last_seen_at__lt=now - _grace())
        .select_related("tenant", "user")
    )
    for presence in stale:
        try:
            agent_presence_away(tenant=presence.tenant, user=presence.user)
        except Exception:
            logger.exception("marking agent %s away failed", presence.user_id)
    waiting_in = (
        Conversation.objects.unscoped()
        .filter(status=ConversationStatus.WAITING_FOR_HUMAN)
        .values("tenant_id")
    )
    tenants = Tenant.objects.filter(
        pk__in=Inbox.objects.unscoped()
        .exclude(assignment=AssignmentMode.MANUAL)
        .filter(tenant_id__in=waiting_in)
        .values("tenant_id")
    )
    for tenant in tenants:
        try:
            assignment_fill(tenant=tenant, now=now)
        except Exception:
            logger.exception("assigning waiting conversations of tenant %s failed", tenant.pk)
    return len(stale)


def online_agents(*, tenant: Tenant, now: datetime | None = None) -> list[AgentPresence]:
    now = now or timezone.now()
    return list(
        AgentPresence.objects.for_tenant(tenant)
        .filter(status=PresenceStatus.ONLINE, last_seen_at__gte=now - _grace())
        .select_related("user")
        .order_by("user_id")
    )


def inbox_agent_ids(*, inbox: Inbox) -> set[int]:
    """Members of the inbox's tenant who hold a grant on it: whom assignment may choose.

    Owners and admins may work every inbox, but are only given conversations automatically in
    inboxes they hold a grant on themselves.
    """
    granted = {user.pk for user in permissions.users_granted(obj=inbox)}
    members = set(
        Membership.objects.for_tenant(inbox.tenant_id)
        .filter(user_id__in=granted, user__is_active=True)
        .values_list("user_id", flat=True)
    )
    return granted & members


def _loads(*, tenant_id: int, user_ids: list[int]) -> dict[int, int]:
    rows = (
        Conversation.objects.for_tenant(tenant_id)
        .filter(status=ConversationStatus.WITH_AGENT, assigned_agent_id__in=user_ids)
        .values("assigned_agent_id")
        .annotate(n=Count("id"))
    )
    return {row["assigned_agent_id"]: row["n"] for row in rows}


def assign_next(
    *,
    conversation: Conversation,
    inbox: Inbox,
    exclude: list[int] | None = None,
    now: datetime | None = None,
) -> Any | None:
    """Give a waiting (or orphaned) conversation to an online agent of its inbox who has room;
    None when the inbox assigns by hand or nobody is available (it then waits in the queue)."""
    if inbox.assignment == AssignmentMode.MANUAL or inbox.tenant_id != conversation.tenant_id:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        eligible = inbox_agent_ids(inbox=inbox) - set(exclude or ())
        # Locking the candidates' presence rows makes concurrent handoffs take turns, so two
        # of them never both see the same last free slot.
        candidates = list(
            AgentPresence.objects.select_for_update()
            .filter(
                tenant_id=inbox.tenant_id,
                user_id__in=eligible,
                status=PresenceStatus.ONLINE,
                last_seen_at__gte=now - _grace(),
            )
            .select_related("user")
            .order_by("user_id")
        )
        if not candidates:
            return None
        loads = _loads(tenant_id=inbox.tenant_id, user_ids=[p.user_id for p in candidates])
        if inbox.agent_capacity:
            candidates = [p for p in candidates if loads.get(p.user_id, 0) < inbox.agent_capacity]
        if not candidates:
            return None
        oldest = datetime.min.replace(tzinfo=now.tzinfo)

        def turn(p: AgentPresence) -> tuple[Any, ...]:
            return (p.last_assigned_at or oldest, p.user_id)

        if inbox.assignment == AssignmentMode.LEAST_BUSY:
            chosen = min(candidates, key=lambda p: (loads.get(p.user_id, 0), *turn(p)))
        else:
            chosen = min(candidates, key=turn)
        AgentPresence.objects.for_tenant(inbox.tenant_id).filter(pk=chosen.pk).update(
            last_assigned_at=now
        )
        assigned = chat_services.conversation_assign(conversation=conversation, agent=chosen.user)
        queue_changed(assigned, event="assigned")
        return chosen.user


def assignment_fill(*, tenant: Tenant, now: datetime | None = None) -> int:
    """Assign conversations waiting in inboxes with automatic assignment (within their office
    hours), most urgent and then oldest first, while online agents have room. Returns how many
    were assigned."""
    at = now or timezone.now()
    # Out of office hours nobody is assigned automatically: those conversations wait.
    auto = [
        inbox
        for inbox in Inbox.objects.for_tenant(tenant).exclude(assignment=AssignmentMode.MANUAL)
        if office_hours.is_open(inbox, at)
    ]
    if not auto:
        return 0
    by_id = {inbox.pk: inbox for inbox in auto}
    default = next((inbox for inbox in auto if inbox.is_default), None)
    waiting = (
        Conversation.objects.for_tenant(tenant)
        .filter(status=ConversationStatus.WAITING_FOR_HUMAN)
        .select_related("tenant", "inbox_route")
        .order_by(F("inbox_route__priority").desc(nulls_last=True), "updated_at", "pk")
    )
    assigned = 0
    for conversation in waiting[:FILL_BATCH]:
        route_row = getattr(conversation, "inbox_route", None)
        inbox = by_id.get(route_row.inbox_id) if route_row is not None else default
        if inbox is None:
            continue
        with transaction.atomic():
            locked = (
                Conversation.objects.select_for_update()
                .filter(tenant=tenant, pk=conversation.pk)
                .first()
            )
            if locked is None or locked.status != ConversationStatus.WAITING_FOR_HUMAN:
                continue
            if assign_next(conversation=locked, inbox=inbox, now=now) is not None:
                assigned += 1
    return assigned


def _back_to_queue(conversation: Conversation) -> None:
    """Unassign: the conversation waits for a person again."""
    Conversation.objects.for_tenant(conversation.tenant_id).filter(pk=conversation.pk).update(
        status=ConversationStatus.WAITING_FOR_HUMAN, assigned_agent=None, updated_at=timezone.now()
    )
    conversation.status = ConversationStatus.WAITING_FOR_HUMAN
    conversation.assigned_agent = None
    tenant_id, pk, public_id = conversation.tenant_id, conversation.pk, str(conversation.public_id)
    transaction.on_commit(
        lambda: realtime.chat_status_send(
            tenant_id=tenant_id,
            conversation_id=pk,
            status=ConversationStatus.WAITING_FOR_HUMAN,
            conversation_public_id=public_id,
        )
    )
    queue_changed(conversation, event="waiting")
