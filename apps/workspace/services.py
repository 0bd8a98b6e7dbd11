"""Writes for the agent workspace: inboxes and grants, take-over, replies, hand-back,
resolution, bulk assignment, corrections (curated answers and evaluation cases).

Chat state changes go through the chat app's services (`apps.conversations.services`), which
record the domain events and push the protocol frames the widget understands; this module adds
the checks an agent console needs (grants, one agent per conversation) and the console's own
queue notifications (`apps.core.realtime.console_*`).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from apps.conversations import services as chat_services
from apps.conversations.models import (
    Conversation,
    ConversationStatus,
    HandoffReason,
    Message,
    MessageRole,
)
from apps.core import permissions, realtime
from apps.core.errors import ApplicationError, ConflictError, NotFoundError
from apps.knowledge.vectorstore.base import PUBLIC_GROUP
from apps.tenants.models import Tenant
from apps.workspace import office_hours, selectors
from apps.workspace.models import (
    WORK_INBOX,
    AssignmentMode,
    ConversationInbox,
    CuratedAnswer,
    EvaluationCase,
    Inbox,
    Priority,
    RoutingRule,
)


def _name(user: Any) -> str:
    return getattr(user, "name", "") or user.get_username()


def _queue_changed(conversation: Conversation, *, event: str) -> None:
    card_source = conversation
    tenant_id, public_id = conversation.tenant_id, str(conversation.public_id)

    def push() -> None:
        fresh = (
            Conversation.objects.for_tenant(tenant_id)
            .select_related("contact", "assigned_agent")
            .get(pk=card_source.pk)
        )
        realtime.console_queue_send(
            tenant_id=tenant_id,
            conversation_public_id=public_id,
            event=event,
            card=selectors.conversation_card(fresh),
        )

    transaction.on_commit(push)


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
        _queue_changed(conversation, event="routed")
    return route


# --- Take-over, replies, hand-back, resolution ------------------------------------------------


def _require_visible(*, user: Any, conversation: Conversation) -> None:
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
    _require_visible(user=agent, conversation=conversation)
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
    _queue_changed(conversation, event="taken")
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
    _require_visible(user=agent, conversation=conversation)
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
    _require_visible(user=agent, conversation=conversation)
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
    _queue_changed(locked, event="handed_back")
    return locked


HAND_BACK_TEXT = "{agent} handed the conversation back to the assistant. Ask away!"


@transaction.atomic
def conversation_close(*, conversation: Conversation, agent: Any) -> Conversation:
    """Resolve the conversation (the widget then asks for a rating)."""
    _require_visible(user=agent, conversation=conversation)
    _require_owner(conversation=conversation, agent=agent)
    resolved = chat_services.conversation_resolve(conversation=conversation, by=agent)
    _queue_changed(resolved, event="resolved")
    return resolved


@transaction.atomic
def conversations_resolve_bulk(*, conversations: list[Conversation], by: Any) -> int:
    """The admin's bulk action: resolve each (already visible) conversation."""
    count = 0
    for conversation in conversations:
        if conversation.status != ConversationStatus.RESOLVED:
            chat_services.conversation_resolve(conversation=conversation, by=by)
            _queue_changed(conversation, event="resolved")
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
        _queue_changed(assigned, event="taken")
    return len(conversations)


def agent_typing(*, conversation: Conversation, agent: Any, active: bool) -> None:
    realtime.chat_typing_send(
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.pk,
        role="agent",
        active=active,
        name=_name(agent),
    )


# --- Corrections --------------------------------------------------------------------------------


def documents_visible_for(*, conversation: Conversation) -> QuerySet:
    """Documents of the conversation's tenant its customer could see (public or in their
    groups): what a correction in that conversation may be drawn from."""
    from apps.knowledge.models import Document

    documents = Document.objects.for_tenant(conversation.tenant_id)
    groups = {PUBLIC_GROUP, *(str(g) for g in conversation.access_groups or [])}
    # Filtered here rather than with a JSON lookup, which SQLite (the demo) does not have.
    visible = [
        pk
        for pk, document_groups in documents.values_list("pk", "access_groups")
        if not document_groups or groups.intersection(str(g) for g in document_groups)
    ]
    return documents.filter(pk__in=visible)


def _sources_for(
    *, tenant: Tenant, document_ids: list[Any], conversation: Conversation | None = None
) -> list[dict[str, Any]]:
    from apps.knowledge.models import Document

    ids = [int(d) for d in document_ids if str(d).isdigit()]
    documents = Document.objects.for_tenant(tenant)
    if conversation is not None:
        documents = documents_visible_for(conversation=conversation)
    documents = {d.pk: d for d in documents.filter(pk__in=ids)}
    if len(documents) != len(set(ids)):
        raise ApplicationError(
            "Some of the sources are not documents of this tenant that this conversation's "
            "customer may see."
        )
    return [
        {"document_id": str(pk), "title": documents[pk].title, "url": documents[pk].url or ""}
        for pk in ids
    ]


def _access_groups_of(
    *, tenant: Tenant, document_ids: list[str], curated_ids: list[str]
) -> list[list[str]]:
    """One entry per restricted document (or curated answer) drawn from: who may see it."""
    from apps.knowledge.models import Document

    required: list[list[str]] = []

    def add(groups: Any) -> None:
        groups = sorted({str(g) for g in groups or [] if g and g != PUBLIC_GROUP})
        if groups and groups not in required:
            required.append(groups)

    numeric = [int(d) for d in document_ids if str(d).isdigit()]
    for groups in (
        Document.objects.for_tenant(tenant)
        .filter(pk__in=numeric)
        .values_list("access_groups", flat=True)
    ):
        add(groups)
    for earlier in CuratedAnswer.objects.for_tenant(tenant).filter(public_id__in=curated_ids):
        for groups in earlier.access_groups or []:
            add(groups)
    return required


def _cited_ids(message: Message | None) -> tuple[list[str], list[str]]:
    """(document ids, curated answer ids) a stored answer cited."""
    documents, curated = [], []
    for citation in (message.citations if message is not None else None) or []:
        if not isinstance(citation, dict):
            continue
        document_id = str(citation.get("document_id") or "")
        chunk_id = str(citation.get("chunk_id") or "")
        for value in (document_id, chunk_id):
            if value.startswith("curated:"):
                with contextlib.suppress(ValueError):
                    curated.append(str(uuid.UUID(value.removeprefix("curated:"))))
        if document_id.isdigit():
            documents.append(document_id)
    return documents, curated


@transaction.atomic
def curated_answer_create(
    *,
    tenant: Tenant,
    question: str,
    answer: str,
    document_ids: list[Any] = (),  # type: ignore[assignment]
    by: Any = None,
    corrected_message: Message | None = None,
) -> CuratedAnswer:
    question, answer = (question or "").strip(), (answer or "").strip()
    if not question or not answer:
        raise ApplicationError("A curated answer needs a question and an answer.")
    conversation = corrected_message.conversation if corrected_message is not None else None
    sources = _sources_for(
        tenant=tenant, document_ids=list(document_ids), conversation=conversation
    )
    cited_documents, cited_curated = _cited_ids(corrected_message)
    access_groups = _access_groups_of(
        tenant=tenant,
        document_ids=[s["document_id"] for s in sources] + cited_documents,
        curated_ids=cited_curated,
    )
    embedding, model = selectors.embed(question)
    return CuratedAnswer.objects.create(
        tenant=tenant,
        question=question,
        answer=answer,
        sources=sources,
        access_groups=access_groups,
        embedding=embedding,
        embedding_model=model,
        created_by=by,
        corrected_message=corrected_message,
    )


@transaction.atomic
def answer_correct(
    *,
    message: Message,
    agent: Any,
    answer: str,
    question: str = "",
    document_ids: list[Any] = (),  # type: ignore[assignment]
) -> tuple[CuratedAnswer, EvaluationCase]:
    """An agent marks an assistant answer wrong and writes the right one.

    Creates a curated answer (retrieved first for similar questions from now on) and an
    evaluation case (replayed by `manage.py evaluate_answers`).
    """
    conversation = message.conversation
    _require_visible(user=agent, conversation=conversation)
    if message.role != MessageRole.ASSISTANT:
        raise ApplicationError("Only an assistant answer can be corrected.")
    question = (question or "").strip() or selectors.question_before(message=message)
    curated = curated_answer_create(
        tenant=conversation.tenant,
        question=question,
        answer=answer,
        document_ids=document_ids,
        by=agent,
        corrected_message=message,
    )
    case = EvaluationCase.objects.create(
        tenant=conversation.tenant,
        question=curated.question,
        expected_answer=curated.answer,
        expected_source_ids=[s["document_id"] for s in curated.sources],
        curated_answer=curated,
        created_by=agent,
    )
    return curated, case


# --- Inbox settings and routing rules -------------------------------------------------------------

INBOX_SETTINGS = (
    "name",
    "assistant_enabled",
    "assignment",
    "agent_capacity",
    "first_response_minutes",
    "resolution_minutes",
    "time_zone",
    "office_hours",
    "holidays",
)
RULE_FIELDS = (
    "name",
    "position",
    "is_active",
    "url_contains",
    "widget_key",
    "languages",
    "token_field",
    "token_values",
    "keywords",
    "handoff_reasons",
    "answerability_below",
    "inbox",
    "priority",
    "hand_off",
)
MAX_RULE_LIST = 50


@transaction.atomic
def inbox_update(*, inbox: Inbox, **fields: Any) -> Inbox:
    """Change an inbox's name, assistant, assignment mode, agent capacity, SLA targets or
    office hours (time zone, weekly hours, holidays)."""
    unknown = set(fields) - set(INBOX_SETTINGS)
    if unknown:
        raise TypeError(f"unknown inbox fields: {', '.join(sorted(unknown))}")
    if "name" in fields:
        name = (fields["name"] or "").strip()
        if not name:
            raise ApplicationError("An inbox needs a name.")
        taken = Inbox.objects.for_tenant(inbox.tenant_id).filter(name=name).exclude(pk=inbox.pk)
        if taken.exists():
            raise ConflictError(f"There is already an inbox named {name!r}.")
        fields["name"] = name
    if "assignment" in fields:
        fields["assignment"] = AssignmentMode(fields["assignment"])
    if "time_zone" in fields:
        fields["time_zone"] = office_hours.zone_validate(fields["time_zone"])
    if "office_hours" in fields:
        fields["office_hours"] = office_hours.hours_validate(fields["office_hours"])
    if "holidays" in fields:
        fields["holidays"] = office_hours.holidays_validate(fields["holidays"])
    for name, value in fields.items():
        setattr(inbox, name, value)
    inbox.save(update_fields=[*fields, "updated_at"])
    if fields.get("assignment", AssignmentMode.MANUAL) != AssignmentMode.MANUAL:
        # Conversations already waiting there are handed out now, not at the next handoff.
        from apps.workspace.handoff import assignment_fill

        transaction.on_commit(lambda: assignment_fill(tenant=inbox.tenant))
    return inbox


def _strings(value: Any, *, field: str, max_length: int = 200) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or len(value) > MAX_RULE_LIST:
        raise ApplicationError(
            f"{field} must be a list of at most {MAX_RULE_LIST} texts.", {"field": field}
        )
    cleaned = []
    for item in value:
        if not isinstance(item, str) or len(item.strip()) > max_length:
            raise ApplicationError(
                f"{field} must hold texts of at most {max_length} characters.", {"field": field}
            )
        if item.strip() and item.strip() not in cleaned:
            cleaned.append(item.strip())
    return cleaned


def _rule_clean(*, tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    """Validate rule fields; the inbox and widget key must be the rule's tenant's own."""
    from apps.tenants.models import WidgetKey

    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise TypeError(f"unknown routing rule fields: {', '.join(sorted(unknown))}")
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()[:100]
        if not fields["name"]:
            raise ApplicationError("A routing rule needs a name.", {"field": "name"})
    inbox = fields.get("inbox")
    if inbox is not None and (not isinstance(inbox, Inbox) or inbox.tenant_id != tenant.pk):
        raise NotFoundError("No such inbox.", {"field": "inbox"})
    key = fields.get("widget_key")
    if key is not None and (not isinstance(key, WidgetKey) or key.tenant_id != tenant.pk):
        raise NotFoundError("No such widget key.", {"field": "widget_key"})
    for name in ("languages", "token_values", "keywords"):
        if name in fields:
            fields[name] = _strings(fields[name], field=name)
    if "languages" in fields:
        fields["languages"] = [code.lower()[:16] for code in fields["languages"]]
    for name, limit in (("url_contains", 500), ("token_field", 64)):
        if name in fields:
            fields[name] = (fields[name] or "").strip()
            if len(fields[name]) > limit:
                raise ApplicationError(f"{name} is longer than {limit} characters.")
    if fields.get("priority") is not None:
        fields["priority"] = Priority(fields["priority"])
    if "handoff_reasons" in fields:
        reasons = _strings(fields["handoff_reasons"], field="handoff_reasons")
        unknown = set(reasons) - set(HandoffReason.values)
        if unknown:
            raise ApplicationError(
                f"Unknown handoff reasons: {', '.join(sorted(unknown))}.",
                {"field": "handoff_reasons", "choices": list(HandoffReason.values)},
            )
        fields["handoff_reasons"] = reasons
    below = fields.get("answerability_below")
    if below is not None and not (isinstance(below, int | float) and 0 < below <= 1):
        raise ApplicationError(
            "answerability_below is a number above 0 and at most 1.",
            {"field": "answerability_below"},
        )
    return fields


def _rule_check_complete(rule: RoutingRule) -> None:
    if rule.inbox_id is None and rule.priority is None and not rule.hand_off:
        raise ApplicationError(
            "A routing rule needs an action: an inbox, a priority or hand_off.",
            {"field": "inbox"},
        )
    if rule.token_values and not rule.token_field:
        raise ApplicationError(
            "token_values need a token_field to compare with.", {"field": "token_field"}
        )


def routing_rule_validate(
    *, tenant: Tenant, fields: dict[str, Any], rule: RoutingRule | None = None
) -> dict[str, Any]:
    """The cleaned fields, or ApplicationError: what create and update check, for forms."""
    fields = _rule_clean(tenant=tenant, fields=dict(fields))
    draft = RoutingRule(tenant=tenant)
    if rule is not None and rule.pk:
        for name in RULE_FIELDS:
            setattr(draft, name, getattr(rule, name))
    for name, value in fields.items():
        setattr(draft, name, value)
    _rule_check_complete(draft)
    return fields


@transaction.atomic
def routing_rule_create(*, tenant: Tenant, name: str, **fields: Any) -> RoutingRule:
    fields = _rule_clean(tenant=tenant, fields={"name": name, **fields})
    if "position" not in fields:
        last = (
            RoutingRule.objects.for_tenant(tenant)
            .order_by("-position")
            .values_list("position", flat=True)
            .first()
        )
        fields["position"] = 0 if last is None else last + 1
    rule = RoutingRule(tenant=tenant, **fields)
    _rule_check_complete(rule)
    rule.save()
    return rule


@transaction.atomic
def routing_rule_update(*, rule: RoutingRule, **fields: Any) -> RoutingRule:
    fields = _rule_clean(tenant=rule.tenant, fields=dict(fields))
    for name, value in fields.items():
        setattr(rule, name, value)
    _rule_check_complete(rule)
    rule.save()
    return rule


def routing_rule_delete(*, rule: RoutingRule) -> None:
    rule.delete()
