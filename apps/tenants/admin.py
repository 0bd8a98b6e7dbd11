from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from unfold.admin import ModelAdmin

from apps.core.admin import TenantRoleMixin, TenantScopedAdmin, TenantScopedTabularInline
from apps.core.errors import ApplicationError
from apps.tenants import invitations, services
from apps.tenants.models import Invitation, Membership, Role, Tenant, WidgetKey, WidgetLanguage


class MembershipInline(TenantScopedTabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role")
    autocomplete_fields = ()
    view_role = Role.ADMIN
    add_role = Role.OWNER
    change_role = Role.OWNER
    delete_role = Role.OWNER

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        # Owners pick among people already in the tenant; new people come in by email through
        # the Membership page, so no tenant ever sees another tenant's user list.
        if not request.user.is_superuser and "user" in formset.form.base_fields:
            field = formset.form.base_fields["user"]
            field.queryset = field.queryset.filter(memberships__tenant=obj).distinct()
        return formset


class WidgetKeyInline(TenantScopedTabularInline):
    model = WidgetKey
    extra = 0
    fields = ("name", "key", "is_active")
    readonly_fields = ("key",)
    view_role = Role.ADMIN
    # The widget's look, greeting and languages are set on the key's own page.
    show_change_link = True


@admin.register(Tenant)
class TenantAdmin(TenantRoleMixin, ModelAdmin):
    list_display = ("name", "slug", "is_active", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("public_id", "created_at", "updated_at")
    fields = (
        "name",
        "slug",
        "is_active",
        "allowed_origins",
        "answer_threshold",
        "unanswerable_action",
        "default_language",
        "settings",
        "public_id",
    )
    inlines = [WidgetKeyInline, MembershipInline]
    view_role = Role.AGENT
    change_role = Role.ADMIN

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(pk__in=[t.pk for t in self._tenants(request, self.view_role)])

    # Tenants are created and removed by the operators of the installation only.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        # The admin's add view runs in one transaction: the tenant and what it needs, or nothing.
        super().save_model(request, obj, form, change)
        if not change:
            # What other apps set up for a new tenant (its default inbox), as tenant_create does.
            services.tenant_setup(tenant=obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # `settings` holds operator switches such as "actions_allow_private" (whether the
            # tenant's actions may reach private addresses): not the tenant's own to flip.
            fields += ["slug", "is_active", "settings"]
        return fields

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        default = getattr(settings, "ASSISTANT_ANSWERABILITY_THRESHOLD", None)
        if db_field.name == "answer_threshold" and field is not None and default is not None:
            # Say what "empty" means on this installation.
            field.help_text = f"{db_field.help_text} (now {float(default):.2f})"
        return field


class MembershipAddForm(forms.ModelForm):
    email = forms.EmailField(help_text="The person's email; an account is created if needed.")
    display_name = forms.CharField(required=False, label="Name")
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Initial password for a new account (leave empty for an existing one).",
    )

    class Meta:
        model = Membership
        fields = ("tenant", "role")

    # Set by MembershipAdmin.get_form: who is adding (existing accounts need their consent).
    added_by: Any = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("tenant") and cleaned.get("email"):
            try:
                services.membership_invite_check(
                    tenant=cleaned["tenant"], email=cleaned["email"], by=self.added_by
                )
            except ApplicationError as exc:
                raise forms.ValidationError({"email": exc.message}) from exc
        return cleaned


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "user__username", "user__display_name")
    view_role = Role.ADMIN
    add_role = Role.OWNER
    change_role = Role.OWNER
    delete_role = Role.OWNER

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = MembershipAddForm
            kwargs["fields"] = ("tenant", "email", "display_name", "role", "password")
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            form = type(form.__name__, (form,), {"added_by": request.user})
        return form

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("tenant", "email", "display_name", "role", "password")
        return ("user", "tenant", "role")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("user", "tenant") if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        if not self._allowed(request, self.add_role, obj):
            raise PermissionDenied("Only owners add members.")
        membership = services.membership_invite(
            tenant=form.cleaned_data["tenant"],
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            name=form.cleaned_data.get("display_name", ""),
            password=form.cleaned_data.get("password") or None,
            by=request.user,
        )
        obj.pk = membership.pk
        obj.user = membership.user


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ("tenant", "email", "role")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("tenant") and cleaned.get("email"):
            try:
                invitations.invitation_check(tenant=cleaned["tenant"], email=cleaned["email"])
            except ApplicationError as exc:
                raise forms.ValidationError({"email": exc.message}) from exc
        return cleaned


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Owners invite people by email (an account that exists joins only when its holder
    accepts); deleting a pending invitation revokes its link."""

    form = InvitationForm
    list_display = ("email", "tenant", "role", "status", "expires_at", "invited_by")
    list_filter = ("role",)
    search_fields = ("email",)
    view_role = Role.ADMIN
    add_role = Role.OWNER
    change_role = Role.OWNER
    delete_role = Role.OWNER

    @admin.display(description="Status")
    def status(self, obj: Invitation) -> str:
        if obj.accepted_at is not None:
            return f"accepted {obj.accepted_at:%Y-%m-%d}"
        return "expired" if obj.expires_at <= timezone.now() else "pending"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("tenant", "email", "role", "expires_at", "invited_by", "accepted_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Invitations are not edited: revoke (delete) and invite again.
        return False

    def save_model(self, request: HttpRequest, obj: Invitation, form: Any, change: bool) -> None:
        if change or not self._allowed(request, self.add_role, obj):
            raise PermissionDenied("Only owners invite people.")
        try:
            invitation, token = invitations.invitation_create(
                tenant=form.cleaned_data["tenant"],
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                by=request.user,
            )
        except ApplicationError as exc:
            raise PermissionDenied(exc.message) from exc
        obj.pk = invitation.pk
        obj.token_digest, obj.expires_at = invitation.token_digest, invitation.expires_at
        if invitations.invitation_send(invitation=invitation, token=token):
            self.message_user(request, f"Invitation emailed to {invitation.email}.")
        else:
            # The only time the link is shown: the owner can hand it over another way.
            self.message_user(
                request,
                f"The email to {invitation.email} could not be sent; give them this link "
                f"yourself (it is not shown again): {invitations.invitation_link(token)}",
                level=messages.WARNING,
            )


class WidgetKeyForm(forms.ModelForm):
    avatar_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=WidgetKey._meta.get_field("avatar_url").help_text,
    )
    languages = forms.MultipleChoiceField(
        choices=WidgetLanguage.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=WidgetKey._meta.get_field("languages").help_text,
    )

    class Meta:
        model = WidgetKey
        fields = (
            "tenant",
            "name",
            "is_active",
            "accent_color",
            "accent_text_color",
            "launcher_position",
            "launcher_label",
            "assistant_name",
            "avatar_url",
            "greeting",
            "suggested_questions",
            "languages",
            "hidden_paths",
        )
        widgets = {
            "accent_color": forms.TextInput(attrs={"type": "color"}),
            "accent_text_color": forms.TextInput(attrs={"type": "color"}),
            "greeting": forms.Textarea(attrs={"rows": 3}),
            "suggested_questions": forms.Textarea(attrs={"rows": 5}),
            "hidden_paths": forms.Textarea(attrs={"rows": 3}),
        }


@admin.register(WidgetKey)
class WidgetKeyAdmin(TenantScopedAdmin):
    """One key of the chat widget and how the widget looks wherever it is used: saved
    settings reach every page with the widget's next connection, no rebuild or embed change."""

    form = WidgetKeyForm
    list_display = ("name", "tenant", "key", "is_active", "created_at")
    readonly_fields = ("key",)
    fieldsets = (
        (None, {"fields": ("tenant", "name", "key", "is_active")}),
        (
            "Look",
            {
                "fields": (
                    ("accent_color", "accent_text_color"),
                    ("launcher_position", "launcher_label"),
                    ("assistant_name", "avatar_url"),
                )
            },
        ),
        ("Conversation start", {"fields": ("greeting", "suggested_questions")}),
        ("Languages and pages", {"fields": ("languages", "hidden_paths")}),
    )
    view_role = Role.ADMIN
