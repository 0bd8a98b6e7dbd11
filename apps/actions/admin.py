"""Actions in the admin: definitions (admins; header values write-only) and the call audit
(agents read it). Every page is limited to the tenants the user belongs to."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from apps.actions import services
from apps.actions.models import Action, ActionCall
from apps.core.admin import TenantScopedAdmin
from apps.core.errors import ApplicationError
from apps.tenants.models import Role


def _headers_from_text(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        name, separator, value = line.partition(":")
        if not separator:
            raise forms.ValidationError(f"{line[:40]!r}: write one header per line as Name: value")
        headers[name.strip()] = value.strip()
    return headers


class ActionForm(forms.ModelForm):
    headers_text = forms.CharField(
        required=False,
        label="Headers",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="One per line, Name: value (e.g. Authorization: Bearer …). Stored encrypted and "
        "never shown again; leave empty to keep the stored headers, or tick “Remove headers”.",
    )
    clear_headers = forms.BooleanField(required=False, label="Remove headers")

    class Meta:
        model = Action
        fields = ["tenant", *services.EDITABLE_FIELDS]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        try:
            cleaned["headers"] = (
                {}
                if cleaned.get("clear_headers")
                else (_headers_from_text(cleaned.get("headers_text", "")) or None)
            )
            if cleaned["headers"]:
                services.headers_check(cleaned["headers"])
        except ApplicationError as exc:
            raise forms.ValidationError({"headers_text": exc.message}) from exc
        return cleaned


@admin.register(Action)
class ActionAdmin(TenantScopedAdmin):
    form = ActionForm
    list_display = ("name", "title", "tenant", "method", "changes_data", "is_active", "updated_at")
    list_filter = ("is_active", "changes_data")
    search_fields = ("name", "title", "description")
    readonly_fields = ("public_id", "header_names", "created_at", "updated_at")
    view_role = Role.ADMIN
    change_role = Role.ADMIN

    def save_model(self, request: HttpRequest, obj: Action, form: Any, change: bool) -> None:
        if not self._allowed(request, self.change_role if change else self.add_role, obj):
            raise PermissionDenied("You cannot save rows of this tenant.")
        fields = {name: form.cleaned_data[name] for name in services.EDITABLE_FIELDS}
        headers = form.cleaned_data.get("headers")
        try:
            if change:
                saved = services.action_update(action=obj, headers=headers, **fields)
            else:
                saved = services.action_create(
                    tenant=form.cleaned_data["tenant"], headers=headers, **fields
                )
        except ApplicationError as exc:
            # The form showed no error for it; say it on the page rather than a 500.
            raise PermissionDenied(exc.message) from exc
        obj.pk, obj.public_id = saved.pk, saved.public_id

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)

        class CheckedForm(form):  # type: ignore[misc, valid-type]
            def clean(inner) -> dict[str, Any]:
                cleaned = super().clean()
                tenant = cleaned.get("tenant")
                if tenant is None:
                    return cleaned
                candidate = Action(
                    pk=obj.pk if obj else None,
                    tenant=tenant,
                    **{n: cleaned.get(n) for n in services.EDITABLE_FIELDS if n in cleaned},
                )
                try:
                    services.action_check(candidate)
                except ApplicationError as exc:
                    for field, messages in (exc.extra or {"__all__": [exc.message]}).items():
                        target = field if field in inner.fields else None
                        for message in messages:
                            inner.add_error(target, message)
                return cleaned

        return CheckedForm


@admin.register(ActionCall)
class ActionCallAdmin(TenantScopedAdmin):
    list_display = (
        "action_name",
        "status",
        "tenant",
        "http_status",
        "latency_ms",
        "confirmed_by",
        "created_at",
    )
    list_filter = ("status", "action_name")
    search_fields = ("action_name", "conversation__public_id")
    view_role = Role.AGENT
    readonly_fields = (
        "public_id",
        "action",
        "action_name",
        "conversation",
        "message",
        "params",
        "status",
        "error",
        "http_status",
        "latency_ms",
        "result",
        "confirmed_by",
        "confirmed_at",
        "created_at",
        "finished_at",
    )
    fields = readonly_fields

    # The audit is written by the assistant only.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
