"""API keys, idempotency records, webhook subscriptions and their deliveries."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.api.scopes import Scope
from apps.core.models import PublicIdMixin, TenantScopedModel
from apps.core.sealing import SealedTextField

API_KEY_PREFIX = "sk_live_"
# The label that derives the sealing key of webhook secrets (apps/core/sealing.py), not a secret.
WEBHOOK_SECRET_PURPOSE = "webhooks:signing-secret"  # noqa: S105


class ApiKey(PublicIdMixin, TenantScopedModel):
    """A tenant's key for the REST API. Only a SHA-256 hash of the secret is stored."""

    name = models.CharField(max_length=100)
    # The visible, unique start of the key (`sk_live_ab12cd34`); the lookup index.
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def has_scope(self, scope: str) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


class IdempotencyRecord(TenantScopedModel):
    """The stored outcome of a POST sent with an `Idempotency-Key`, replayed for 24 hours.

    The row is inserted before the request runs (`status_code` empty while in progress); the
    unique constraint makes two concurrent requests with one key race-safe: only one inserts.
    """

    key = models.CharField(max_length=255)
    # Who sent it (`key:<id>` or `user:<id>`): a key is never replayed to someone else.
    principal = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2000)
    body_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    response_body = models.TextField(blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"


class WebhookSubscription(PublicIdMixin, TenantScopedModel):
    """A URL that receives signed POSTs for the tenant's events of the chosen types."""

    url = models.URLField(max_length=2000)
    # Event type names, or ["*"] for every type.
    event_types = models.JSONField(default=list)
    # Not hashed, as the secret signs each delivery; sealed at rest (apps/core/sealing.py), so a
    # database dump does not let anyone forge deliveries.
    secret = SealedTextField(purpose=WEBHOOK_SECRET_PURPOSE, editable=False)
    # After a rotation the old secret keeps signing (a second signature) for a day, so
    # receivers can switch without dropping deliveries.
    previous_secret = SealedTextField(
        purpose=WEBHOOK_SECRET_PURPOSE, blank=True, default="", editable=False
    )
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets that sign a delivery now; empty when the current one cannot be opened
        (sealed under a SECRET_KEY the server no longer has), so nothing goes out unsigned."""
        if not self.secret:
            return []
        secrets = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > (now or timezone.now())
        ):
            secrets.append(self.previous_secret)
        return secrets


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the last attempt failed; a retry is scheduled at next_attempt_at
    DEAD = "dead"  # every retry failed; waits for a manual redelivery


class WebhookDelivery(PublicIdMixin, TenantScopedModel):
    """One event sent to one subscription, with its retry state."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_body_excerpt = models.TextField(blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"], name="webhook_delivery_unique_event"
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.subscription_id} ({self.status})"


class WebhookAttempt(TenantScopedModel):
    """The log of one HTTP attempt of a delivery."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_body_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
