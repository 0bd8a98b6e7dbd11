"""Review of conversations in the admin: filters, the review list and page, bulk resolve,
assign and CSV export, and corrections of assistant answers.

Conversations are the chat app's model; this admin limits them twice: to the tenants the
person is a member of (`TenantScopedAdmin`), then to the inboxes an agent is granted.
"""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import admin, messages
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
    Message,
    MessageRole,
    MessageStatus,
)
from apps.core.admin import TenantScopedAdmin
from apps.core.errors import ApplicationError
from apps.knowledge.models import Document, Source
from apps.tenants.models import Membership, Role
from apps.workspace import corrections, selectors, services

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
        tenants = model_admin._tenants(request, model_admin.view_role)
        if request.user.is_superuser:
            return Source.objects.unscoped()
        return Source.objects.for_tenants(tenants)

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return [(str(s.pk), s.name) for s in self._sources(request, model_admin).order_by("name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
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
                corrections.answer_correct(
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
        self.fields["sources"].queryset = corrections.documents_visible_for(
            conversation=conversation
        ).order_by("title")
