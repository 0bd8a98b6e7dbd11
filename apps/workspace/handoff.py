"""Handoff that a company controls: routing rules, agents' presence and automatic assignment.

The chat app calls `route` (registered in WorkspaceConfig.ready) inside the transaction of
every conversation start, customer message (while the assistant answers) and handoff:

1. the tenant's active routing rules are tried in order; the first that matches may move the
   conversation into an inbox of the same tenant, set its priority, or hand it off at once;
2. a conversation routed into an inbox whose assistant is off is handed off at once too;
3. when it is handed off, an inbox with automatic assignment gives it to an online agent who
   holds a grant on that inbox and has room (round robin or least busy).

Presence and assignment are in `assignment`, service levels in `sla`; this module holds the
rules, `route` and what the customer is told out of office hours.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
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
from apps.workspace import office_hours, selectors
from apps.workspace.assignment import assign_next, notify_if_away
from apps.workspace.models import ConversationInbox, Inbox, RoutingRule
from apps.workspace.queue import queue_changed
from apps.workspace.sla import sla_start

logger = logging.getLogger(__name__)

ROUTED_TO_PERSON_TEXT = "A person from our team will take it from here."


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
        queue_changed(conversation, event="routed")
    return row


def route(*, conversation: Conversation, moment: str, text: str = "") -> None:
    """The chat app's routing hook (see the module docstring)."""
    conversation = (
        Conversation.objects.for_tenant(conversation.tenant_id)
        .select_related("tenant", "contact", "assigned_agent")
        .get(pk=conversation.pk)
    )
    if moment == "assigned":
        notify_if_away(conversation)
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
