"""Admin for API keys, webhook subscriptions and deliveries (tenant-scoped, admins only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from apps.core.admin import TenantScopedAdmin
from apps.core.api.scopes import Scope
from apps.core.errors import ApplicationError
from apps.integrations import services
from apps.integrations.models import ApiKey, WebhookDelivery, WebhookSubscription
from apps.tenants.models import Role

_SECRETS_ATTR = "_supportai_secrets_once"


def _secret_page(
    request: HttpRequest, admin_site: Any, *, what: str, secrets: list[dict], next_url: str
) -> HttpResponse:
    """A page showing new secrets once, in the answer to the form that made them.

    Not a flash message: Django keeps those in the `messages` cookie (signed, not encrypted),
    which the browser would send back and keep. The page is never cached.
    """
    context = {
        **admin_site.each_context(request),
        "title": f"Copy {what}",
        "what": what,
        "secrets": secrets,
        "next_url": next_url,
    }
    response = TemplateResponse(request, "admin/integrations/secret_once.html", context)
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store, " + response["Cache-Control"]
    return response


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    form = ApiKeyForm
    list_display = (
        "name",
        "prefix",
        "tenant",
        "scopes",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "public_id", "created_by", "last_used_at", "revoked_at")
    actions = ["revoke_keys"]
    view_role = Role.ADMIN

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["tenant", "name", "scopes", "expires_at"]
        return ["tenant", "name", "prefix", "scopes", "expires_at", *self.readonly_fields[1:]]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        # A key's tenant and scopes are fixed once issued: issue a new key instead.
        return (*self.readonly_fields, "tenant", "scopes")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        if not self._allowed(request, self.add_role, obj):
            raise PermissionDenied("You cannot add keys to this tenant.")
        obj.created_by = request.user
        plaintext = services.api_key_issue(api_key=obj)
        setattr(request, _SECRETS_ATTR, [{"label": obj.name, "secret": plaintext}])

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None):
        secrets = getattr(request, _SECRETS_ATTR, None)
        if not secrets:
            return super().response_add(request, obj, post_url_continue)
        return _secret_page(
            request,
            self.admin_site,
            what="the new API key",
            secrets=secrets,
            next_url=reverse("admin:integrations_apikey_changelist"),
        )

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for api_key in queryset:
            if self._allowed(request, self.change_role, api_key):
                services.api_key_revoke(api_key=api_key)
                count += 1
        self.message_user(request, f"Revoked {count} key(s).")


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[("*", "every event"), *[(t, t) for t in services.SUBSCRIBABLE_EVENT_TYPES]],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookSubscription
        fields = ["tenant", "url", "event_types", "description", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            services.webhook_url_check(url)
        except ApplicationError as exc:
            raise ValidationError(exc.message) from exc
        return url

    def clean_event_types(self) -> list[str]:
        values = self.cleaned_data["event_types"]
        return ["*"] if "*" in values else values


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(TenantScopedAdmin):
    form = WebhookSubscriptionForm
    list_display = ("url", "tenant", "event_types", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    readonly_fields = ("public_id", "created_by", "created_at", "updated_at")
    actions = ["rotate_secrets"]
    view_role = Role.ADMIN

    def save_model(self, request: HttpRequest, obj: WebhookSubscription, form: Any, change: bool):
        if not change:
            obj.secret = services.webhook_secret_new()
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            setattr(request, _SECRETS_ATTR, [{"label": obj.url, "secret": obj.secret}])

    def response_add(
        self, request: HttpRequest, obj: WebhookSubscription, post_url_continue: Any = None
    ):
        secrets = getattr(request, _SECRETS_ATTR, None)
        if not secrets:
            return super().response_add(request, obj, post_url_continue)
        return _secret_page(
            request,
            self.admin_site,
            what="the signing secret",
            secrets=secrets,
            next_url=reverse("admin:integrations_webhooksubscription_changelist"),
        )

    @admin.action(description="Rotate the signing secret of selected subscriptions")
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]):
        secrets = []
        for subscription in queryset:
            if self._allowed(request, self.change_role, subscription):
                services.webhook_subscription_rotate_secret(subscription=subscription)
                secrets.append(
                    {
                        "label": subscription.url,
                        "secret": subscription.secret,
                        "note": "The old secret co-signs for 24 hours.",
                    }
                )
        if not secrets:
            self.message_user(request, "No subscription rotated.")
            return None
        return _secret_page(
            request,
            self.admin_site,
            what="the new signing secrets",
            secrets=secrets,
            next_url=reverse("admin:integrations_webhooksubscription_changelist"),
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    list_display = (
        "event",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("subscription__url", "event__type")
    actions = ["redeliver"]
    view_role = Role.ADMIN
    change_role = Role.ADMIN

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Redeliver selected deliveries now")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for delivery in queryset:
            if self._allowed(request, self.change_role, delivery):
                services.webhook_delivery_redeliver(delivery=delivery)
                count += 1
        self.message_user(request, f"Queued {count} delivery(ies) again.")
