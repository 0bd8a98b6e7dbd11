"""The outbox: domain events recorded in the same transaction as the change they describe."""

from django.db import models

from apps.core.models import PublicIdMixin, TenantScopedModel


class EventType(models.TextChoices):
    CONVERSATION_CREATED = "conversation.created"
    MESSAGE_CREATED = "message.created"
    HANDOFF_REQUESTED = "handoff.requested"
    CONVERSATION_RESOLVED = "conversation.resolved"
    FEEDBACK_RECEIVED = "feedback.received"
    SOURCE_SYNCED = "source.synced"
    SOURCE_FAILED = "source.failed"
    DRIFT_ALERT = "drift.alert"
    # A conversation handed to a person missed its inbox's first-response or resolution target.
    SLA_BREACHED = "sla.breached"
    # The assistant ran an action (an HTTP call into the tenant's systems): apps/actions.
    ACTION_EXECUTED = "action.executed"
    # Every retry of a webhook delivery failed; for the admin and analytics, never a webhook.
    WEBHOOK_DELIVERY_DEAD = "webhook.delivery_dead"


class Event(PublicIdMixin, TenantScopedModel):
    """One domain event. `dispatched_at` is set once the dispatcher has fanned it out."""

    type = models.CharField(max_length=64, choices=EventType.choices, db_index=True)
    payload = models.JSONField(default=dict)
    dispatched_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["tenant", "type", "created_at"])]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"
