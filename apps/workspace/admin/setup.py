"""What a tenant sets up for its agents in the admin: inboxes and their agents, routing rules,
agents' presence (read only), curated answers and evaluation cases."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from unfold.decorators import display

from apps.accounts.models import User
from apps.conversations.models import HandoffReason
from apps.core import permissions
from apps.core.admin import TenantScopedAdmin
from apps.core.errors import ApplicationError
from apps.tenants.models import Membership, Role
from apps.workspace import inbox_settings, office_hours, services
from apps.workspace.models import (
    WORK_INBOX,
    AgentPresence,
    CuratedAnswer,
    EvaluationCase,
    Inbox,
    RoutingRule,
)


class InboxForm(forms.ModelForm):
    agents = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        help_text="Agents who may see, take over and answer this inbox's conversations. "
        "Owners and admins work every inbox.",
    )

    class Meta:
        model = Inbox
        fields = (
            "tenant",
            "name",
            "agents",
            "assistant_enabled",
            "assignment",
            "agent_capacity",
            "first_response_minutes",
            "resolution_minutes",
            "time_zone",
            "office_hours",
            "holidays",
        )
        help_texts = {
            "office_hours": 'Weekly local hours, e.g. {"mon": [["09:00", "17:00"]], "tue": '
            '[["09:00", "12:00"], ["13:00", "17:00"]]}; {} means always open.',
            "holidays": 'A JSON list of local dates, e.g. ["2026-12-25"].',
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            data["time_zone"] = office_hours.zone_validate(data.get("time_zone", ""))
            data["office_hours"] = office_hours.hours_validate(data.get("office_hours"))
            data["holidays"] = office_hours.holidays_validate(data.get("holidays"))
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(Inbox)
class InboxAdmin(TenantScopedAdmin):
    view_role = Role.ADMIN
    form = InboxForm
    list_display = (
        "name",
        "tenant",
        "is_default",
        "assignment",
        "assistant_enabled",
        "agent_names",
    )

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        tenant_ids = (
            [obj.tenant_id] if obj else [t.pk for t in self._tenants(request, self.change_role)]
        )
        members = Membership.objects.for_tenants(tenant_ids).filter(role=Role.AGENT)
        form.base_fields["agents"].queryset = User.objects.filter(
            pk__in=members.values("user_id")
        ).order_by("username")
        if obj is not None:
            form.base_fields["agents"].initial = [u.pk for u in _granted(obj)]
        return form

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        inbox = form.instance
        wanted = set(form.cleaned_data.get("agents") or [])
        current = set(_granted(inbox))
        for user in wanted - current:
            services.inbox_grant(inbox=inbox, agent=user)
        for user in current - wanted:
            services.inbox_revoke(inbox=inbox, agent=user)

    @display(description="Agents")
    def agent_names(self, obj: Inbox) -> str:
        return ", ".join(sorted(u.get_username() for u in _granted(obj))) or "—"


def _granted(inbox: Inbox) -> list[Any]:
    return [
        u
        for u in permissions.users_granted(obj=inbox)
        if u.has_perm(f"workspace.{WORK_INBOX}", inbox)
    ]


class RoutingRuleForm(forms.ModelForm):
    class Meta:
        model = RoutingRule
        fields = ("tenant", *inbox_settings.RULE_FIELDS)
        help_texts = {
            "languages": 'A JSON list of language codes, e.g. ["de", "fr"].',
            "token_values": 'A JSON list, e.g. ["enterprise"]; empty: the claim is present.',
            "keywords": 'A JSON list of words or phrases, e.g. ["refund", "chargeback"].',
            "handoff_reasons": "Only at a handoff for one of these reasons, a JSON list of: "
            + ", ".join(f'"{r}"' for r in HandoffReason.values)
            + ".",
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is None or self.errors:
            return data
        try:
            inbox_settings.routing_rule_validate(
                tenant=tenant, fields=_rule_fields(data), rule=self.instance
            )
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


def _rule_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in inbox_settings.RULE_FIELDS if name in data}


@admin.register(RoutingRule)
class RoutingRuleAdmin(TenantScopedAdmin):
    """Routing rules go through the same service as the API (validation, tenant checks)."""

    view_role = Role.ADMIN
    form = RoutingRuleForm
    list_display = ("name", "tenant", "position", "is_active", "inbox", "priority", "hand_off")
    list_editable = ("position", "is_active")
    ordering = ("tenant", "position", "id")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not self._allowed(request, self.change_role if change else self.add_role, obj):
            raise PermissionDenied("You cannot save rows of this tenant.")
        # The form validated the same fields with the service's own checks (`clean`).
        fields = _rule_fields(form.cleaned_data)
        if change:
            inbox_settings.routing_rule_update(rule=obj, **fields)
        else:
            saved = inbox_settings.routing_rule_create(tenant=obj.tenant, **fields)
            obj.pk, obj.public_id = saved.pk, saved.public_id


@admin.register(AgentPresence)
class AgentPresenceAdmin(TenantScopedAdmin):
    view_role = Role.ADMIN
    list_display = ("user", "tenant", "status", "last_seen_at", "last_assigned_at")
    list_filter = ("status",)
    readonly_fields = ("tenant", "user", "status", "last_seen_at", "last_assigned_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CuratedAnswer)
class CuratedAnswerAdmin(TenantScopedAdmin):
    view_role = Role.AGENT
    list_display = ("question", "tenant", "is_active", "created_by", "created_at")
    list_filter = ("is_active",)
    search_fields = ("question", "answer")
    readonly_fields = (
        "question",
        "answer",
        "sources",
        "access_groups",
        "corrected_message",
        "created_by",
    )
    exclude = ("embedding", "embedding_model")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # created from a correction, which also embeds the question


@admin.register(EvaluationCase)
class EvaluationCaseAdmin(TenantScopedAdmin):
    view_role = Role.AGENT
    list_display = ("question", "tenant", "expected_source_ids", "last_result", "created_at")
    search_fields = ("question", "expected_answer")
    readonly_fields = ("last_result", "curated_answer", "created_by")
