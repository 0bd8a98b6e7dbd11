"""Writes for what a tenant's admins set up for handoff: inbox settings (assistant, assignment
mode, agent capacity, SLA targets, office hours) and routing rules (validated, created,
changed, deleted). The rules are applied by `handoff.route`."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.conversations.models import HandoffReason
from apps.core.errors import ApplicationError, ConflictError, NotFoundError
from apps.tenants.models import Tenant, WidgetKey
from apps.workspace import office_hours
from apps.workspace.assignment import assignment_fill
from apps.workspace.models import AssignmentMode, Inbox, Priority, RoutingRule

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
