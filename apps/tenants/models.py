from __future__ import annotations

import secrets
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.models import PublicIdMixin, TenantScopedModel, TimestampedModel


def _widget_key() -> str:
    return "pk_" + secrets.token_urlsafe(24)


def _end_user_secret() -> str:
    return secrets.token_urlsafe(32)


def validate_origin(value: str) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc or parsed.path not in {"", "/"}:
        raise ValidationError(
            f"{value!r} is not an origin: use scheme://host[:port], e.g. https://www.example.com"
        )


class UnanswerableAction(models.TextChoices):
    """What the assistant does when the knowledge does not answer a question."""

    DECLINE = "decline", "Say it does not know"
    OFFER = "offer", "Say it does not know and offer a person"
    HANDOFF = "handoff", "Hand the conversation to a person"


class Tenant(PublicIdMixin, TimestampedModel):
    """A company using SupportAI. Everything it owns carries its id."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    is_active = models.BooleanField(default=True)
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text="Origins whose pages may embed the chat widget, e.g. https://www.example.com",
    )
    settings = models.JSONField(default=dict, blank=True)
    # Answers whose answerability (0-1) falls below this are not given; empty: the product's
    # calibrated default (ASSISTANT_ANSWERABILITY_THRESHOLD).
    answer_threshold = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Answerability (0-1) below which the assistant does not answer. Empty: the "
        "calibrated default.",
    )
    unanswerable_action = models.CharField(
        max_length=16,
        choices=UnanswerableAction.choices,
        default=UnanswerableAction.OFFER,
        help_text="What the assistant does when the knowledge does not answer a question.",
    )
    # Signs end-user tokens (HMAC) that identify a logged-in customer to the widget.
    end_user_secret = models.CharField(max_length=64, default=_end_user_secret, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.allowed_origins, list):
            raise ValidationError({"allowed_origins": "A list of origins is expected."})
        errors = []
        for origin in self.allowed_origins:
            try:
                validate_origin(str(origin))
            except ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise ValidationError({"allowed_origins": errors})
        self.allowed_origins = [str(o).rstrip("/") for o in self.allowed_origins]

    def origin_allowed(self, origin: str | None) -> bool:
        return bool(origin) and origin.rstrip("/") in self.allowed_origins


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"


ROLE_RANK = {Role.AGENT: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Membership(TenantScopedModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")
        ]
        ordering = ["tenant_id", "role", "user_id"]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} of {self.tenant}"


class WidgetKey(TenantScopedModel):
    """A public key the embedded widget presents; it only works from the tenant's origins."""

    name = models.CharField(max_length=100, default="Website")
    key = models.CharField(max_length=64, unique=True, default=_widget_key, editable=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["tenant_id", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key[:10]}…)"
