"""Daily roll-ups, drift reports and alerts, and the nightly conversation insights.

Definitions of every number are in docs/analytics.md; `services.rollup_compute` is the code.
"""

from __future__ import annotations

from django.db import models

from apps.core.models import TenantScopedModel


class DailyTenantStats(TenantScopedModel):
    """One tenant's numbers for one day (in settings.TIME_ZONE), recomputable at any time."""

    day = models.DateField()
    computed_at = models.DateTimeField()

    # Volume.
    conversations_started = models.PositiveIntegerField(default=0)
    conversations_active = models.PositiveIntegerField(default=0)
    messages_customer = models.PositiveIntegerField(default=0)
    messages_assistant = models.PositiveIntegerField(default=0)
    messages_agent = models.PositiveIntegerField(default=0)
    messages_system = models.PositiveIntegerField(default=0)

    # Outcomes.
    conversations_resolved = models.PositiveIntegerField(default=0)
    conversations_ai_resolved = models.PositiveIntegerField(default=0)
    conversations_handed_off = models.PositiveIntegerField(default=0)
    conversations_deflected = models.PositiveIntegerField(default=0)
    ai_resolution_rate = models.FloatField(null=True, blank=True)
    deflection_rate = models.FloatField(null=True, blank=True)
    handoff_rate = models.FloatField(null=True, blank=True)

    # Answers and feedback.
    answers = models.PositiveIntegerField(default=0)
    answers_unanswered = models.PositiveIntegerField(default=0)
    unanswered_rate = models.FloatField(null=True, blank=True)
    thumbs_up = models.PositiveIntegerField(default=0)
    thumbs_down = models.PositiveIntegerField(default=0)
    thumbs_up_rate = models.FloatField(null=True, blank=True)
    csat_count = models.PositiveIntegerField(default=0)
    csat_average = models.FloatField(null=True, blank=True)

    # What the answer engine did with the answers (Message.grounding["outcome"]).
    answers_grounded = models.PositiveIntegerField(default=0)
    answers_fell_back = models.PositiveIntegerField(default=0)
    answers_declined = models.PositiveIntegerField(default=0)
    grounded_rate = models.FloatField(null=True, blank=True)
    fell_back_rate = models.FloatField(null=True, blank=True)
    declined_rate = models.FloatField(null=True, blank=True)

    # Latency (milliseconds) and tokens.
    retrieval_ms_p50 = models.FloatField(null=True, blank=True)
    retrieval_ms_p95 = models.FloatField(null=True, blank=True)
    first_token_ms_p50 = models.FloatField(null=True, blank=True)
    first_token_ms_p95 = models.FloatField(null=True, blank=True)
    total_ms_p50 = models.FloatField(null=True, blank=True)
    total_ms_p95 = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["tenant_id", "-day"]
        verbose_name = "daily tenant stats"
        verbose_name_plural = "daily tenant stats"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day"], name="dailytenantstats_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} · {self.day}"


class DriftReport(TenantScopedModel):
    """The outcome of one weekly drift check: statistics, unanswered topics, stale sources."""

    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    baseline_start = models.DateTimeField()
    computed_at = models.DateTimeField()
    # {"questions": {...}, "retrieval": {...}}: sample sizes, statistics, p-values, thresholds.
    stats = models.JSONField(default=dict, blank=True)
    # [{source_id, public_id, name, last_synced_at, citations}]
    stale_sources = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["tenant_id", "-window_end"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "window_end"], name="driftreport_unique_window"
            )
        ]

    def __str__(self) -> str:
        return f"drift {self.window_start:%Y-%m-%d}…{self.window_end:%Y-%m-%d}"


class UnansweredCluster(TenantScopedModel):
    """Questions the assistant could not answer (or got thumbs down) that look alike."""

    report = models.ForeignKey(DriftReport, on_delete=models.CASCADE, related_name="clusters")
    label = models.CharField(max_length=200)
    terms = models.JSONField(default=list, blank=True)
    size = models.PositiveIntegerField()
    examples = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["report_id", "-size", "id"]

    def __str__(self) -> str:
        return f"{self.label} ({self.size})"


class DriftKind(models.TextChoices):
    QUESTION_SHIFT = "question_shift", "Customer questions shifted"
    RETRIEVAL_SCORE_SHIFT = "retrieval_score_shift", "Retrieval scores shifted"


class DriftAlert(TenantScopedModel):
    """A shift past its threshold. One per tenant, kind and window, so re-runs add nothing."""

    report = models.ForeignKey(
        DriftReport, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    kind = models.CharField(max_length=32, choices=DriftKind.choices)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    statistic = models.FloatField()
    p_value = models.FloatField()
    message = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tenant_id", "-window_end", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "window_end"], name="driftalert_unique_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.window_end:%Y-%m-%d})"


class InsightStatus(models.TextChoices):
    PROCESSING = "processing", "Processing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ConversationInsight(TenantScopedModel):
    """The nightly summary and topic tags of one resolved conversation.

    The row is created (status processing) before the model is asked, and the conversation is
    unique: two runs at once cannot both claim a conversation, and a second run skips it.
    """

    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="insight"
    )
    # The resolution this summary describes; a conversation resolved again is summarised again.
    resolved_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=InsightStatus.choices, default=InsightStatus.PROCESSING
    )
    summary = models.TextField(blank=True, default="")
    topics = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    summarized_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tenant_id", "-summarized_at", "-id"]
        indexes = [models.Index(fields=["tenant", "status"])]

    def __str__(self) -> str:
        return f"insight for conversation {self.conversation_id}"
