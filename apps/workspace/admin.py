"""Review of conversations in the admin, inboxes and their agents, corrections.

Conversations are the chat app's model; this admin limits them twice: to the tenants the
person is a member of (`TenantScopedAdmin`), then to the inboxes an agent is granted.
"""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.decorators import action, display

from apps.accounts.models import User
from apps.conversations.models import (
    Conversation,
    Decision,
    Feedback,
    FeedbackKind,
    HandoffReason,
    Message,
    MessageRole,
    MessageStatus,
)
from apps.core import permissions
from apps.core.admin import TenantScopedAdmin
from apps.core.errors import ApplicationError
from apps.tenants.models import Membership, Role
from apps.workspace import office_hours, selectors, services
from apps.workspace.models import (
    WORK_INBOX,
    AgentPresence,
    CuratedAnswer,
    EvaluationCase,
    Inbox,
    RoutingRule,
)

# --- Filters --------------------------------------------------------------------------------------


def _messages_of_row() -> QuerySet[Message]:
    # Correlated to the outer conversation, which is already tenant-scoped.
    return Message.objects.unscoped().filter(conversation=OuterRef("pk"))


class HandedOffFilter(admin.SimpleListFilter):
    title = "handed off"
    parameter_name = "handed_off"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("yes", "Handed off to a person"), ("no", "Assistant only"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.exclude(handoff_reason="")
        if self.value() == "no":
            return queryset.filter(handoff_reason="")
        return queryset


class RatingFilter(admin.SimpleListFilter):
    title = "rating"
    parameter_name = "rating"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return [
            *((str(n), f"CSAT {n}") for n in range(5, 0, -1)),
            ("down", "An answer got thumbs down"),
            ("up", "An answer got thumbs up"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        kind = FeedbackKind.THUMBS if value in {"up", "down"} else FeedbackKind.CSAT
        rated = Feedback.objects.unscoped().filter(
            conversation=OuterRef("pk"), kind=kind, rating=value
        )
        return queryset.filter(Exists(rated))


class UnansweredFilter(admin.SimpleListFilter):
    """Conversations where neither the assistant nor an agent gave an answer."""

    title = "answered"
    parameter_name = "unanswered"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("yes", "Unanswered"), ("no", "Answered"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        answered = _messages_of_row().filter(
            Q(role=MessageRole.AGENT)
            | Q(
                role=MessageRole.ASSISTANT,
                status=MessageStatus.COMPLETE,
                decision__in=[Decision.ANSWER, Decision.EXTRACTIVE],
            )
        )
        if self.value() == "yes":
            return queryset.filter(~Exists(answered))
        if self.value() == "no":
            return queryset.filter(Exists(answered))
        return queryset


class CitedSourceFilter(admin.SimpleListFilter):
    title = "cited source"
    parameter_name = "cited_source"

    def _sources(self, request: HttpRequest, model_admin: Any) -> QuerySet:
        from apps.knowledge.models import Source

        tenants = model_admin._tenants(request, model_admin.view_role)
        if request.user.is_superuser:
            return Source.objects.unscoped()
        return Source.objects.for_tenants(tenants)

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return [(str(s.pk), s.name) for s in self._sources(request, model_admin).order_by("name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        from apps.knowledge.models import Document

        if not self.value() or not str(self.value()).isdigit():
            return queryset
        source = self._sources(request, self._model_admin).filter(pk=int(self.value())).first()
        if source is None:
            return queryset.none()
        document_ids = Document.objects.for_tenant(source.tenant_id).filter(source=source)
        condition = Q(pk__in=[])
        for document_id in document_ids.values_list("pk", flat=True):
            condition |= Q(citations__contains=[{"document_id": str(document_id)}])
        return queryset.filter(Exists(_messages_of_row().filter(condition)))

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        self._model_admin = model_admin
        super().__init__(request, params, model, model_admin)


# --- Conversations --------------------------------------------------------------------------------


class AssignForm(forms.Form):
    agent = forms.ModelChoiceField(queryset=User.objects.none(), label="Assign to")

    def __init__(self, *args: Any, tenant_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # People who are members of every tenant of the selected conversations.
        users = User.objects.filter(is_active=True)
        for tenant_id in tenant_ids:
            users = users.filter(pk__in=Membership.objects.for_tenant(tenant_id).values("user_id"))
        self.fields["agent"].queryset = users.order_by("username")


@admin.register(Conversation)
class ConversationReviewAdmin(TenantScopedAdmin):
    view_role = Role.AGENT
    change_role = Role.AGENT
    change_form_template = "admin/workspace/conversation/change_form.html"
    list_display = (
        "short_id",
        "tenant",
        "status",
        "handoff_reason",
        "contact",
        "assigned_agent",
        "inbox_name",
        "last_message_at",
        "created_at",
    )
    list_filter = (
        "status",
        HandedOffFilter,
        RatingFilter,
        UnansweredFilter,
        CitedSourceFilter,
        ("created_at", RangeDateFilter),
    )
    list_filter_submit = True
    search_fields = ("messages__content", "contact__email", "contact__name", "summary")
    list_select_related = ("contact", "assigned_agent", "tenant")
    actions = ["resolve_selected", "assign_selected", "export_csv"]
    ordering = ("-last_message_at", "-id")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        visible = selectors.conversations_visible_in(
            user=request.user, tenants=self._tenants(request, self.view_role)
        )
        return queryset.filter(pk__in=visible.values("pk"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @display(description="Conversation")
    def short_id(self, obj: Conversation) -> str:
        return str(obj.public_id)[:8]

    @display(description="Inbox")
    def inbox_name(self, obj: Conversation) -> str:
        return selectors.conversation_inbox(conversation=obj).name

    # --- Transcript and corrections -------------------------------------------------------------

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra_context = extra_context or {}
        conversation = self.get_object(request, object_id)
        if conversation is not None:
            extra_context["transcript"] = [
                {
                    "message": m,
                    "retrieval": sorted(m.retrieval or [], key=lambda r: r.get("rank") or 0),
                    "correctable": m.role == MessageRole.ASSISTANT,
                }
                for m in selectors.transcript(conversation=conversation)
            ]
            extra_context["inbox"] = selectors.conversation_inbox(conversation=conversation)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list:
        return [
            path(
                "<path:object_id>/correct/<int:message_id>/",
                self.admin_site.admin_view(self.correct_view),
                name="workspace_conversation_correct",
            ),
            *super().get_urls(),
        ]

    def correct_view(self, request: HttpRequest, object_id: str, message_id: int) -> HttpResponse:
        conversation = self.get_object(request, object_id)
        if conversation is None:
            return HttpResponseRedirect(reverse("admin:index"))
        message = get_object_or_404(
            Message.objects.for_tenant(conversation.tenant_id),
            conversation=conversation,
            pk=message_id,
            role=MessageRole.ASSISTANT,
        )
        form = CorrectionForm(
            request.POST or None,
            tenant=conversation.tenant,
            conversation=conversation,
            initial={
                "question": selectors.question_before(message=message),
                "answer": message.content,
                "sources": [
                    c.get("document_id")
                    for c in message.citations or []
                    if str(c.get("document_id", "")).isdigit()
                ],
            },
        )
        if request.method == "POST" and form.is_valid():
            try:
                services.answer_correct(
                    message=message,
                    agent=request.user,
                    question=form.cleaned_data["question"],
                    answer=form.cleaned_data["answer"],
                    document_ids=[d.pk for d in form.cleaned_data["sources"]],
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    "Saved: the corrected answer is used for similar questions from now on, "
                    "and was added to the evaluation cases.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:conversations_conversation_change", args=[conversation.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Correct an answer",
            "opts": self.model._meta,
            "conversation": conversation,
            "message": message,
            "form": form,
        }
        return TemplateResponse(request, "admin/workspace/conversation/correct.html", context)

    # --- Actions ------------------------------------------------------------------------------

    @action(description="Resolve selected conversations")
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = services.conversations_resolve_bulk(conversations=list(queryset), by=request.user)
        self.message_user(request, f"Resolved {count} conversation(s).", messages.SUCCESS)

    @action(description="Assign selected conversations to an agent")
    def assign_selected(self, request: HttpRequest, queryset: QuerySet) -> Any:
        conversations = list(queryset)
        tenant_ids = sorted({c.tenant_id for c in conversations})
        form = AssignForm(request.POST if "apply" in request.POST else None, tenant_ids=tenant_ids)
        if "apply" in request.POST and form.is_valid():
            try:
                count = services.conversations_assign_bulk(
                    conversations=conversations, agent=form.cleaned_data["agent"], by=request.user
                )
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            self.message_user(request, f"Assigned {count} conversation(s).", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Assign conversations",
            "opts": self.model._meta,
            "form": form,
            "conversations": conversations,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/workspace/conversation/assign.html", context)

    @action(description="Export selected as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="conversations.csv"'
        writer = csv.writer(response)
        writer.writerow(
            [
                "id",
                "tenant",
                "status",
                "handoff_reason",
                "contact",
                "assigned_agent",
                "inbox",
                "messages",
                "created_at",
                "last_message_at",
                "resolved_at",
            ]
        )
        for c in queryset.select_related("tenant", "contact", "assigned_agent"):
            writer.writerow(
                [
                    str(c.public_id),
                    c.tenant.slug,
                    c.status,
                    c.handoff_reason,
                    _csv_safe(str(c.contact) if c.contact_id else ""),
                    c.assigned_agent.get_username() if c.assigned_agent_id else "",
                    _csv_safe(selectors.conversation_inbox(conversation=c).name),
                    c.messages.count(),
                    c.created_at.isoformat(),
                    c.last_message_at.isoformat() if c.last_message_at else "",
                    c.resolved_at.isoformat() if c.resolved_at else "",
                ]
            )
        return response


def _csv_safe(value: str) -> str:
    """Keep spreadsheet programs from running a cell as a formula."""
    return "'" + value if value[:1] in {"=", "+", "-", "@"} else value


class CorrectionForm(forms.Form):
    question = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    answer = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), label="Right answer")
    sources = forms.ModelMultipleChoiceField(
        queryset=None, required=False, help_text="Documents the right answer comes from."
    )

    def __init__(self, *args: Any, tenant: Any, conversation: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only documents this conversation's customer could see: a correction must not carry
        # restricted text to people outside the document's access groups.
        self.fields["sources"].queryset = services.documents_visible_for(
            conversation=conversation
        ).order_by("title")


# --- Inboxes, curated answers, evaluation cases ---------------------------------------------------


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
        fields = ("tenant", *services.RULE_FIELDS)
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
            services.routing_rule_validate(
                tenant=tenant, fields=_rule_fields(data), rule=self.instance
            )
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


def _rule_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in services.RULE_FIELDS if name in data}


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
            services.routing_rule_update(rule=obj, **fields)
        else:
            saved = services.routing_rule_create(tenant=obj.tenant, **fields)
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
