"""Handoff that a company controls: routing rules, agents' presence and automatic assignment.

The chat app calls `route` (registered in WorkspaceConfig.ready) inside the transaction of
every conversation start, customer message (while the assistant answers) and handoff:

1. the tenant's active routing rules are tried in order; the first that matches may move the
   conversation into an inbox of the same tenant, set its priority, or hand it off at once;
2. a conversation routed into an inbox whose assistant is off is handed off at once too;
3. when it is handed off, an inbox with automatic assignment gives it to an online agent who
   holds a grant on that inbox and has room (round robin or least busy).

Presence comes from the console's websocket: a socket marks its agent seen when it connects
and every third of AGENT_PRESENCE_GRACE_SECONDS while it stays open; `presence_sweep` (Celery
beat) marks agents not seen for the grace period away and passes their conversations on.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from apps.conversations import services as chat_services
from apps.conversations.models import (
    ASSISTANT_ACTIVE_STATUSES,
    Conversation,
    ConversationStatus,
    HandoffReason,
    Message,
    MessageRole,
)
from apps.core import permissions, realtime
from apps.events.models import EventType
from apps.events.services import event_record
from apps.tenants.models import Membership, Tenant
from apps.workspace import office_hours, selectors
from apps.workspace.models import (
    AgentPresence,
    AssignmentMode,
    ConversationInbox,
    Inbox,
    PresenceStatus,
    RoutingRule,
)

logger = logging.getLogger(__name__)

ROUTED_TO_PERSON_TEXT = "A person from our team will take it from here."
# Assignment of waiting conversations when an agent comes online stops after this many.
FILL_BATCH = 50


# --- Rules -------------------------------------------------------------------------------------


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    # Whole words, so "refund" does not match "refunded" only by accident of spelling.
    return re.compile(rf"(?<!\w){re.escape(keyword.strip())}(?!\w)", re.IGNORECASE)


def _language_matches(language: str, wanted: list[str]) -> bool:
    language = (language or "").lower()
    return any(
        language == code.lower() or language.startswith(code.lower() + "-") for code in wanted
    )


def _claim_matches(conversation: Conversation, field: str, values: list[str]) -> bool:
    claims = (conversation.context or {}).get("claims") or {}
    value = claims.get(field)
    if field == "groups" and value is None:
        value = list(conversation.access_groups or [])
    if value is None or value == [] or value == "":
        return False
    if not values:
        return bool(value)  # the claim is present (and not false)
    wanted = {str(v).lower() for v in values}
    if isinstance(value, list):
        return bool(wanted.intersection(str(v).lower() for v in value))
    if isinstance(value, bool):
        return str(value).lower() in wanted
    return str(value).lower() in wanted


def _last_answerability(conversation: Conversation) -> float | None:
    return (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation_id=conversation.pk, role=MessageRole.ASSISTANT)
        .order_by("-id")
        .values_list("answerability", flat=True)
        .first()
    )


def rule_matches(
    rule: RoutingRule, *, conversation: Conversation, text: str = "", moment: str = ""
) -> bool:
    """Whether every condition the rule sets holds for this conversation and message."""
    if (rule.handoff_reasons or rule.answerability_below is not None) and moment != "handoff":
        return False  # conditions on the handoff itself wait for it
    if rule.handoff_reasons and conversation.handoff_reason not in rule.handoff_reasons:
        return False
    if rule.answerability_below is not None:
        score = _last_answerability(conversation) if conversation.pk else None
        if score is None or score >= rule.answerability_below:
            return False
    page_url = str((conversation.context or {}).get("page_url") or "")
    if rule.url_contains and rule.url_contains.lower() not in page_url.lower():
        return False
    if rule.widget_key_id and rule.widget_key_id != conversation.widget_key_id:
        return False
    if rule.languages and not _language_matches(conversation.language, rule.languages):
        return False
    if rule.token_field and not _claim_matches(conversation, rule.token_field, rule.token_values):
        return False
    keywords = [k for k in rule.keywords or [] if str(k).strip()]
    return not (keywords and not any(_keyword_pattern(str(k)).search(text) for k in keywords))


def rule_for(*, conversation: Conversation, text: str = "", moment: str = "") -> RoutingRule | None:
    """The first active rule of the conversation's tenant that matches, in order."""
    rules = (
        RoutingRule.objects.for_tenant(conversation.tenant_id)
        .filter(is_active=True)
        .select_related("inbox")
        .order_by("position", "id")
    )
    for rule in rules:
        if rule_matches(rule, conversation=conversation, text=text, moment=moment):
            return rule
    return None


def _apply(conversation: Conversation, rule: RoutingRule) -> ConversationInbox | None:
    """Move the conversation into the rule's inbox and priority (the rule's own tenant only)."""
    if rule.tenant_id != conversation.tenant_id:
        raise ValueError("a routing rule of another tenant")  # never: rules are tenant-scoped
    inbox = rule.inbox
    if inbox is not None and inbox.tenant_id != conversation.tenant_id:
        return None  # defence in depth: a rule can never route into another tenant's inbox
    current = ConversationInbox.objects.for_tenant(conversation.tenant_id).filter(
        conversation=conversation
    )
    row = current.first()
    if inbox is None and rule.priority is None:
        return row
    target = inbox or (row.inbox if row else selectors.inbox_default(tenant=conversation.tenant))
    defaults: dict[str, Any] = {"inbox": target, "rule": rule}
    if rule.priority is not None:
        defaults["priority"] = rule.priority
    moved = row is None or row.inbox_id != target.pk
    row, _ = ConversationInbox.objects.update_or_create(
        tenant_id=conversation.tenant_id, conversation=conversation, defaults=defaults
    )
    if moved and conversation.status == ConversationStatus.WAITING_FOR_HUMAN:
        _queue_changed(conversation, event="routed")
    return row


def route(*, conversation: Conversation, moment: str, text: str = "") -> None:
    """The chat app's routing hook (see the module docstring)."""
    conversation = (
        Conversation.objects.for_tenant(conversation.tenant_id)
        .select_related("tenant", "contact", "assigned_agent")
        .get(pk=conversation.pk)
    )
    if moment == "assigned":
        _notify_if_away(conversation)
        return
    if moment == "message" and conversation.status not in ASSISTANT_ACTIVE_STATUSES:
        # A person has it (or will): rules stay put; the message may hold an email address.
        _reply_email_capture(conversation, text)
        return
    rule = rule_for(conversation=conversation, text=text, moment=moment)
    if rule is not None:
        _apply(conversation, rule)
    inbox = selectors.conversation_inbox(conversation=conversation)
    if moment == "handoff":
        if conversation.status == ConversationStatus.WAITING_FOR_HUMAN:
            sla_start(conversation=conversation, inbox=inbox)
            now = timezone.now()
            if office_hours.is_open(inbox, now):
                assign_next(conversation=conversation, inbox=inbox, now=now)
            else:
                _out_of_hours(conversation, inbox, now=now)
        return
    forced = (rule is not None and rule.hand_off) or not inbox.assistant_enabled
    if forced and conversation.status in ASSISTANT_ACTIVE_STATUSES:
        if moment == "message":
            # Said before the handoff, so the customer reads it before an agent joins.
            chat_services.message_post_system(
                conversation=conversation, content=ROUTED_TO_PERSON_TEXT
            )
        chat_services.handoff_request(conversation=conversation, reason=HandoffReason.ROUTING_RULE)


# --- Office hours --------------------------------------------------------------------------------

AWAY_TEXT = "Our team is away right now and back {when}."
ASK_EMAIL_TEXT = (
    " Leave your email address here and we will reply to you there; this conversation waits "
    "for us too."
)
KNOWN_EMAIL_TEXT = " We will reply here, or by email to {email}."
EMAIL_THANKS_TEXT = "Thank you! We will reply to {email} as soon as we are back."
EMAIL_INVALID_TEXT = "That email address does not look right. Could you check it and send it again?"
_EMAIL_CANDIDATE = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")


def _known_email(conversation: Conversation) -> str:
    if conversation.reply_email:
        return conversation.reply_email
    return conversation.contact.email if conversation.contact_id else ""


def _out_of_hours(conversation: Conversation, inbox: Inbox, *, now: datetime) -> None:
    """Tell the customer when the team is back; ask for an email address unless known."""
    back = office_hours.next_open(inbox, now)
    when = office_hours.describe(back, now=now) if back else "as soon as we can"
    email = _known_email(conversation)
    text = AWAY_TEXT.format(when=when)
    text += KNOWN_EMAIL_TEXT.format(email=email) if email else ASK_EMAIL_TEXT
    ConversationInbox.objects.for_tenant(conversation.tenant_id).filter(
        conversation=conversation
    ).update(awaiting_email=not email)
    chat_services.message_post_system(conversation=conversation, content=text)


def _reply_email_capture(conversation: Conversation, text: str) -> None:
    """Store a valid email address the customer sent while we asked for one."""
    waiting = (
        ConversationInbox.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, awaiting_email=True)
        .exists()
    )
    if not waiting or "@" not in (text or ""):
        return
    candidate = _EMAIL_CANDIDATE.search(text)
    email = candidate.group(0).strip(".").lower() if candidate else ""
    try:
        validate_email(email)
    except ValidationError:
        chat_services.message_post_system(conversation=conversation, content=EMAIL_INVALID_TEXT)
        return
    Conversation.objects.for_tenant(conversation.tenant_id).filter(pk=conversation.pk).update(
        reply_email=email[:254]
    )
    ConversationInbox.objects.for_tenant(conversation.tenant_id).filter(
        conversation=conversation
    ).update(awaiting_email=False)
    chat_services.message_post_system(
        conversation=conversation, content=EMAIL_THANKS_TEXT.format(email=email)
    )


def team_available(*, conversation: Conversation, now: datetime | None = None) -> bool:
    """Whether the conversation's inbox is within office hours now."""
    inbox = selectors.conversation_inbox(conversation=conversation)
    return office_hours.is_open(inbox, now or timezone.now())


def team_availability(*, conversation: Conversation) -> dict[str, Any] | None:
    """For the widget: the team's office hours state, for the inbox the conversation is in
    (or, for a draft, the inbox the routing rules would put it in). None without hours."""
    if conversation.pk is None:
        rule = rule_for(conversation=conversation)
        inbox = rule.inbox if rule is not None and rule.inbox is not None else None
        inbox = inbox or selectors.inbox_default(tenant=conversation.tenant)
    else:
        inbox = selectors.conversation_inbox(conversation=conversation)
    if not office_hours.has_hours(inbox):
        return None
    now = timezone.now()
    if office_hours.is_open(inbox, now):
        return {"available": True, "back_at": None}
    back = office_hours.next_open(inbox, now)
    return {"available": False, "back_at": back.isoformat() if back else None}


# --- Notifications -------------------------------------------------------------------------------


def agent_is_online(*, tenant_id: int, user_id: int, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        AgentPresence.objects.for_tenant(tenant_id)
        .filter(user_id=user_id, status=PresenceStatus.ONLINE, last_seen_at__gte=now - _grace())
        .exists()
    )


def _notify_if_away(conversation: Conversation) -> None:
    """A conversation given to an agent who is not at the console: tell them by email."""
    agent = conversation.assigned_agent
    if agent is None or not agent.email:
        return
    if agent_is_online(tenant_id=conversation.tenant_id, user_id=agent.pk):
        return  # the console notifies them (notice, tone, browser notification)
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


# --- Presence ------------------------------------------------------------------------------------


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


# --- Assignment ----------------------------------------------------------------------------------


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
        _queue_changed(assigned, event="assigned")
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


# --- Service levels ------------------------------------------------------------------------------


def sla_start(*, conversation: Conversation, inbox: Inbox, now: datetime | None = None) -> None:
    """Start the SLA clock of a conversation handed to a person (restarted by each handoff)."""
    now = now or timezone.now()

    def due(minutes: int) -> datetime | None:
        return now + timedelta(minutes=minutes) if minutes else None

    ConversationInbox.objects.update_or_create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        defaults={
            "inbox": inbox,
            "handed_off_at": now,
            "first_response_due_at": due(inbox.first_response_minutes),
            "resolution_due_at": due(inbox.resolution_minutes),
            "first_response_breached_at": None,
            "resolution_breached_at": None,
        },
    )


SLA_KINDS = {
    "first_response": ("first_response_due_at", "first_response_breached_at"),
    "resolution": ("resolution_due_at", "resolution_breached_at"),
}


def _sla_met(row: ConversationInbox, kind: str, due: datetime) -> bool | None:
    """True when the target was met, False when missed, None when it no longer applies."""
    conversation = row.conversation
    resolved_in_time = conversation.resolved_at is not None and conversation.resolved_at <= due
    if kind == "resolution":
        if resolved_in_time:
            return True
        return None if conversation.status == ConversationStatus.OPEN else False
    answered = (
        Message.objects.for_tenant(row.tenant_id)
        .filter(
            conversation_id=row.conversation_id,
            role=MessageRole.AGENT,
            created_at__gte=row.handed_off_at,
            created_at__lte=due,
        )
        .exists()
    )
    if answered or resolved_in_time:
        return True
    # Handed back to the assistant before anyone replied: nobody is waiting any more.
    return None if conversation.status == ConversationStatus.OPEN else False


def sla_check(*, now: datetime | None = None) -> int:
    """Flag conversations past a target (every tenant): each breach once, as an `sla.breached`
    event and a console queue update. Returns how many breaches were recorded."""
    now = now or timezone.now()
    recorded = 0
    for kind, (due_field, breached_field) in SLA_KINDS.items():
        overdue = (
            ConversationInbox.objects.unscoped()
            .filter(**{f"{due_field}__lt": now, f"{breached_field}__isnull": True})
            .select_related("conversation", "conversation__tenant", "inbox")
            .order_by(due_field)[:500]
        )
        for row in overdue:
            due = getattr(row, due_field)
            met = _sla_met(row, kind, due)
            if met is not False:
                # Met, or moot: stop watching this target.
                ConversationInbox.objects.for_tenant(row.tenant_id).filter(pk=row.pk).update(
                    **{due_field: None}
                )
                continue
            recorded += _sla_breach(row, kind=kind, due=due, now=now)
    return recorded


@transaction.atomic
def _sla_breach(row: ConversationInbox, *, kind: str, due: datetime, now: datetime) -> int:
    due_field, breached_field = SLA_KINDS[kind]
    # Conditional update: of two sweeps racing, exactly one records the breach.
    flagged = (
        ConversationInbox.objects.for_tenant(row.tenant_id)
        .filter(pk=row.pk, **{due_field: due, f"{breached_field}__isnull": True})
        .update(**{breached_field: now})
    )
    if not flagged:
        return 0
    conversation = row.conversation
    event_record(
        tenant=conversation.tenant,
        type=EventType.SLA_BREACHED,
        payload={
            "conversation_id": str(conversation.public_id),
            "inbox_id": str(row.inbox.public_id),
            "inbox": row.inbox.name,
            "target": kind,
            "due_at": due.isoformat(),
            "breached_at": now.isoformat(),
            "assigned_agent_id": conversation.assigned_agent_id,
        },
    )
    _queue_changed(conversation, event="sla_breached")
    return 1


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
    _queue_changed(conversation, event="waiting")


def _queue_changed(conversation: Conversation, *, event: str) -> None:
    from apps.workspace.services import _queue_changed as queue_changed

    queue_changed(conversation, event=event)
