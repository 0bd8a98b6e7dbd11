"""Actions: tenant-defined HTTP calls into the company's own systems, and their audit trail.

An `Action` says how to look something up or change something (order status, cancel an
order); an `ActionCall` is one time the assistant ran (or was asked to run) it.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.core.models import PublicIdMixin, TenantScopedModel


class HttpMethod(models.TextChoices):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


validate_action_name = RegexValidator(
    r"^[a-z][a-z0-9_]{1,62}$",
    "Use 2-63 lower-case letters, digits and underscores, starting with a letter "
    "(e.g. order_status).",
)


class Action(PublicIdMixin, TenantScopedModel):
    """One HTTP call the assistant may make for a customer of this tenant."""

    name = models.CharField(max_length=63, validators=[validate_action_name])
    # What the customer sees of it ("Order status"): the confirm button and the source's title.
    title = models.CharField(max_length=100)
    # What the action does, for choosing it: the matcher and the model read this.
    description = models.TextField()
    # Example questions that need the action, one per line (help the matcher choose).
    examples = models.TextField(blank=True, default="")
    # A JSON Schema of type object: the parameters, their patterns and which are required.
    parameters = models.JSONField(default=dict, blank=True)
    method = models.CharField(max_length=8, choices=HttpMethod.choices, default=HttpMethod.GET)
    # https://orders.example.com/api/orders/{order_number}: placeholders are parameter names.
    url_template = models.CharField(max_length=2000)
    # Header names only; the values (API tokens) are in `headers_encrypted`, never shown again.
    header_names = models.JSONField(default=list, blank=True, editable=False)
    headers_encrypted = models.TextField(blank=True, default="", editable=False)
    timeout_seconds = models.FloatField(
        default=5.0, validators=[MinValueValidator(0.5), MaxValueValidator(30.0)]
    )
    # Dotted paths into the JSON response that may be shown to the customer; nothing else is.
    result_fields = models.JSONField(default=list, blank=True)
    # Changes something in the company's system: the customer confirms first, never retried.
    changes_data = models.BooleanField(default=False)
    # {parameter: claim}: filled from the signed end-user token ("sub", "email", "name" or
    # "claims.<name>"), never from what the customer types. Unauthenticated visitors cannot
    # run an action with bindings.
    identity_bindings = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="action_unique_name")
        ]

    def __str__(self) -> str:
        return self.title or self.name

    @property
    def needs_identity(self) -> bool:
        return bool(self.identity_bindings)


class CallStatus(models.TextChoices):
    NEEDS_PARAMETERS = "needs_parameters", "Asked the customer for a parameter"
    PENDING_CONFIRMATION = "pending_confirmation", "Waiting for the customer's confirmation"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused (identity, address or parameters)"
    DECLINED = "declined", "The customer said no"


FINAL_STATUSES = frozenset(
    {CallStatus.SUCCEEDED, CallStatus.FAILED, CallStatus.REFUSED, CallStatus.DECLINED}
)


class ActionCall(PublicIdMixin, TenantScopedModel):
    """The audit record of one use of an action (kept when the action is deleted)."""

    action = models.ForeignKey(
        Action, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    action_name = models.CharField(max_length=63)
    conversation = models.ForeignKey(
        "conversations.Conversation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The customer message that asked for it.
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Parameters as sent, with sensitive ones masked.
    params = models.JSONField(default=dict, blank=True)
    # The real parameters while the call waits (for a confirmation or a missing parameter),
    # encrypted; emptied once it ran.
    pending_encrypted = models.TextField(blank=True, default="", editable=False)
    status = models.CharField(max_length=24, choices=CallStatus.choices)
    error = models.TextField(blank=True, default="")
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # The fields shown to the customer.
    result = models.JSONField(default=dict, blank=True)
    # Who confirmed a changing action ("customer <external id>"), and when.
    confirmed_by = models.CharField(max_length=300, blank=True, default="")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "conversation", "status"])]

    def __str__(self) -> str:
        return f"{self.action_name} ({self.status})"
