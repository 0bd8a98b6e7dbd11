from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.core.models import PublicIdMixin, TenantScopedModel, TimestampedModel
from apps.core.sealing import SealedTextField

# The label that derives the sealing key of end-user token secrets, not a secret itself.
END_USER_SECRET_PURPOSE = "tenants:end-user-secret"  # noqa: S105


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


class WidgetLanguage(models.TextChoices):
    """Languages the chat widget has strings for (frontend/src/i18n.ts has one catalog each)."""

    EN = "en", "English"
    DE = "de", "Deutsch"
    FR = "fr", "Français"
    ES = "es", "Español"


class LauncherPosition(models.TextChoices):
    RIGHT = "right", "Bottom right"
    LEFT = "left", "Bottom left"


validate_hex_color = RegexValidator(
    r"^#[0-9a-fA-F]{6}$", "Use a colour in the form #1a73e8 (# and six hex digits)."
)
MAX_SUGGESTED_QUESTIONS = 5
MAX_SUGGESTED_QUESTION_CHARS = 150
MAX_HIDDEN_PATHS = 50
MAX_HIDDEN_PATH_CHARS = 200


def text_lines(value: str) -> list[str]:
    """The non-empty lines of a one-per-line text field, stripped."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


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
    default_language = models.CharField(
        max_length=8,
        choices=WidgetLanguage.choices,
        default=WidgetLanguage.EN,
        help_text="The chat widget's language when the visitor's browser asks for none of the "
        "widget key's languages.",
    )
    # Signs end-user tokens (HMAC) that identify a logged-in customer to the widget.
    # The key that signs end-user tokens (HMAC): it must sign, so it is sealed at rest
    # (apps/core/sealing.py) rather than hashed.
    end_user_secret = SealedTextField(
        purpose=END_USER_SECRET_PURPOSE, default=_end_user_secret, editable=False
    )

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
    """A public key the embedded widget presents; it only works from the tenant's origins.

    It also carries how the widget looks and greets on the sites that use this key; the widget
    receives these settings in its first websocket frame (docs/widget.md).
    """

    name = models.CharField(max_length=100, default="Website")
    key = models.CharField(max_length=64, unique=True, default=_widget_key, editable=False)
    is_active = models.BooleanField(default=True)
    accent_color = models.CharField(
        max_length=7,
        default="#2563eb",
        validators=[validate_hex_color],
        help_text="The launcher, the header and the customer's messages, e.g. #2563eb.",
    )
    accent_text_color = models.CharField(
        max_length=7,
        default="#ffffff",
        validators=[validate_hex_color],
        help_text="Text and icons drawn on the accent colour, e.g. #ffffff.",
    )
    launcher_position = models.CharField(
        max_length=8, choices=LauncherPosition.choices, default=LauncherPosition.RIGHT
    )
    launcher_label = models.CharField(
        max_length=40,
        blank=True,
        help_text="Text beside the launcher's icon, e.g. “Questions?”. Empty: the icon alone.",
    )
    assistant_name = models.CharField(
        max_length=60,
        blank=True,
        help_text="Shown in the header and on the assistant's answers. Empty: “Support”, in "
        "the visitor's language.",
    )
    avatar_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="An image (https://…) shown beside the assistant's name. Empty: none.",
    )
    greeting = models.TextField(
        max_length=500,
        blank=True,
        help_text="The first message a visitor sees, before they write anything.",
    )
    suggested_questions = models.TextField(
        blank=True,
        help_text=f"One question per line (at most {MAX_SUGGESTED_QUESTIONS}); a visitor sends "
        "one with a click before writing anything.",
    )
    languages = models.JSONField(
        default=list,
        blank=True,
        help_text="Languages the widget may speak, picked from the visitor's browser; when it "
        "asks for none of them, the tenant's default language. None ticked: all.",
    )
    hidden_paths = models.TextField(
        blank=True,
        help_text="Pages where the widget stays hidden: one path per line, * matches anything, "
        "e.g. /checkout/*",
    )

    class Meta:
        ordering = ["tenant_id", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key[:10]}…)"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        questions = text_lines(self.suggested_questions)
        if len(questions) > MAX_SUGGESTED_QUESTIONS:
            errors["suggested_questions"] = [f"At most {MAX_SUGGESTED_QUESTIONS} questions."]
        elif any(len(q) > MAX_SUGGESTED_QUESTION_CHARS for q in questions):
            errors["suggested_questions"] = [
                f"Each question has at most {MAX_SUGGESTED_QUESTION_CHARS} characters."
            ]
        paths = text_lines(self.hidden_paths)
        if len(paths) > MAX_HIDDEN_PATHS:
            errors["hidden_paths"] = [f"At most {MAX_HIDDEN_PATHS} paths."]
        elif bad := [p for p in paths if not p.startswith("/") or len(p) > MAX_HIDDEN_PATH_CHARS]:
            errors["hidden_paths"] = [
                f"{bad[0][:40]!r} is not a path: start with / (e.g. /checkout/*), at most "
                f"{MAX_HIDDEN_PATH_CHARS} characters."
            ]
        if not isinstance(self.languages, list) or not set(self.languages) <= set(
            WidgetLanguage.values
        ):
            errors["languages"] = [
                f"Pick among {', '.join(WidgetLanguage.values)}; none means all of them."
            ]
        if self.avatar_url and urlparse(self.avatar_url).scheme not in {"https", "http"}:
            errors["avatar_url"] = ["Use an https:// address."]
        if errors:
            raise ValidationError(errors)


class Invitation(TenantScopedModel):
    """An invitation for an existing account (or anyone) to join a tenant with a role.

    Only a SHA-256 digest of its token is stored: the link in the email is the only copy of the
    token. It is accepted once, by the signed-in account whose email it was sent to, before
    ``expires_at``; an owner revokes it by deleting it.
    """

    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    expires_at = models.DateTimeField(editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} · {self.get_role_display()} of {self.tenant}"

    def is_for(self, user: Any) -> bool:
        """Whether `user` is the account this invitation was sent to (by email)."""
        return (getattr(user, "email", "") or "").strip().lower() == self.email
