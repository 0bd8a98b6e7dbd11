"""Inboxes that route conversations to agents, and what agents teach the assistant.

Routing lives beside the chat app's `Conversation` (one `ConversationInbox` row per routed
conversation) so the chat model stays untouched: a conversation without a routing row belongs
to its tenant's default inbox.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import PublicIdMixin, TenantScopedModel

WORK_INBOX = "work_inbox"


class AssignmentMode(models.TextChoices):
    MANUAL = "manual", "Manual (agents take conversations from the queue)"
    ROUND_ROBIN = "round_robin", "Round robin among online agents"
    LEAST_BUSY = "least_busy", "The online agent with the fewest open conversations"


class Priority(models.IntegerChoices):
    LOW = 0, "Low"
    NORMAL = 1, "Normal"
    HIGH = 2, "High"
    URGENT = 3, "Urgent"


class Inbox(PublicIdMixin, TenantScopedModel):
    """A queue of conversations; agents work the inboxes they hold `work_inbox` on."""

    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False)
    # Off: conversations routed here go to a person at once; the assistant never answers.
    assistant_enabled = models.BooleanField(default=True)
    assignment = models.CharField(
        max_length=16, choices=AssignmentMode.choices, default=AssignmentMode.MANUAL
    )
    # Most conversations an agent works at once before assignment passes them by (0: no limit).
    agent_capacity = models.PositiveSmallIntegerField(default=0)
    # Service-level targets from the handoff, in minutes (0: none): an agent's first reply,
    # and resolution. A conversation past one is flagged in the console and `sla.breached`.
    first_response_minutes = models.PositiveIntegerField(default=0)
    resolution_minutes = models.PositiveIntegerField(default=0)
    # Office hours (apps/workspace/office_hours.py): out of them a handoff tells the customer
    # when the team is back and asks for an email address; nobody is assigned automatically.
    time_zone = models.CharField(max_length=64, default="UTC")
    # {"mon": [["09:00", "17:00"]], ...}; empty: always open.
    office_hours = models.JSONField(default=dict, blank=True)
    # Local dates ("2026-12-25") the team is out all day.
    holidays = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["tenant_id", "-is_default", "name"]
        permissions = [(WORK_INBOX, "Can see and answer the conversations of this inbox")]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="inbox_unique_name"),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_default=True), name="inbox_one_default"
            ),
        ]
        verbose_name_plural = "inboxes"

    def __str__(self) -> str:
        return self.name


class ConversationInbox(TenantScopedModel):
    """Which inbox a conversation is routed to (absent: the tenant's default inbox)."""

    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="inbox_route"
    )
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="routes")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    # The routing rule that put it here (none: routed by hand or by default).
    rule = models.ForeignKey(
        "workspace.RoutingRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The SLA clock, started at the latest handoff from the inbox's targets.
    handed_off_at = models.DateTimeField(null=True, blank=True)
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    first_response_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)
    # Handed off out of office hours without a known email address: the customer's next
    # messages are read for one.
    awaiting_email = models.BooleanField(default=False)

    class Meta:
        verbose_name = "conversation routing"
        indexes = [
            models.Index(
                fields=["first_response_due_at"],
                condition=Q(first_response_breached_at__isnull=True),
                name="route_first_response_due",
            ),
            models.Index(
                fields=["resolution_due_at"],
                condition=Q(resolution_breached_at__isnull=True),
                name="route_resolution_due",
            ),
        ]

    @property
    def sla_breached(self) -> bool:
        return bool(self.first_response_breached_at or self.resolution_breached_at)

    def __str__(self) -> str:
        return f"{self.conversation_id} → {self.inbox}"


class RoutingRule(PublicIdMixin, TenantScopedModel):
    """Where a conversation goes, tried in `position` order; the first rule that matches wins.

    Every condition that is set must hold (an empty one always holds); inside a list condition
    one entry is enough. Rules are tried when a conversation starts, on each customer message
    while the assistant answers, and when it is handed off to a person.
    """

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    # --- Conditions ---
    # The widget's page URL contains this text (case-insensitive).
    url_contains = models.CharField(max_length=500, blank=True, default="")
    widget_key = models.ForeignKey(
        "tenants.WidgetKey", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Language codes ("de", "pt-BR"); "de" also matches "de-AT".
    languages = models.JSONField(default=list, blank=True)
    # A claim of the signed end-user token (e.g. "plan", "groups") and the values that match
    # (for a list claim such as groups, one shared value is enough).
    token_field = models.CharField(max_length=64, blank=True, default="")
    token_values = models.JSONField(default=list, blank=True)
    # Words or phrases in the customer's message (case-insensitive, whole words).
    keywords = models.JSONField(default=list, blank=True)
    # Only when handing off, for one of these reasons (HandoffReason values).
    handoff_reasons = models.JSONField(default=list, blank=True)
    # Only when handing off after an assistant answer whose answerability (0-1, the answer
    # engine's confidence that the knowledge answers the question) was below this.
    answerability_below = models.FloatField(null=True, blank=True)
    # --- Actions ---
    inbox = models.ForeignKey(
        Inbox, null=True, blank=True, on_delete=models.CASCADE, related_name="rules"
    )
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, null=True, blank=True)
    # Hand the conversation to a person at once; the assistant does not answer.
    hand_off = models.BooleanField(default=False)

    class Meta:
        ordering = ["tenant_id", "position", "id"]
        indexes = [models.Index(fields=["tenant", "is_active", "position"])]

    def __str__(self) -> str:
        return self.name


class PresenceStatus(models.TextChoices):
    ONLINE = "online", "Online"
    AWAY = "away", "Away"


class AgentPresence(TenantScopedModel):
    """Whether a member is at the console: online while a console socket of theirs has been
    seen within AGENT_PRESENCE_GRACE_SECONDS, away otherwise."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presences"
    )
    status = models.CharField(
        max_length=8, choices=PresenceStatus.choices, default=PresenceStatus.AWAY
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # The agent said they are away (console switch): their open console does not make them
    # online until they say they are back.
    away_by_choice = models.BooleanField(default=False)
    # Round robin hands the next conversation to the online agent assigned longest ago.
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="presence_unique_user")
        ]
        indexes = [models.Index(fields=["tenant", "status"])]
        verbose_name = "agent presence"

    def __str__(self) -> str:
        return f"{self.user} ({self.status})"


class CuratedAnswer(PublicIdMixin, TenantScopedModel):
    """An answer an agent wrote to correct the assistant; retrieved first for similar questions."""

    question = models.TextField()
    answer = models.TextField()
    # [{document_id, title, url}] the agent pointed to, as citations of the curated answer.
    sources = models.JSONField(default=list, blank=True)
    # Who may be given this answer: one entry per restricted document it was drawn from (those
    # the agent chose and those the corrected answer cited), each the groups that may see that
    # document. A caller needs one group of every entry; empty means public.
    access_groups = models.JSONField(default=list, blank=True)
    # The question's dense embedding (knowledge embedder), normalised.
    embedding = models.JSONField(default=list, blank=True)
    embedding_model = models.CharField(max_length=500, blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The assistant answer this corrects, if any.
    corrected_message = models.ForeignKey(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.question[:80]

    def visible_to(self, access_groups: list[str] | None) -> bool:
        """Whether a caller with these groups could see every document this was drawn from."""
        groups = set(access_groups or ())
        return all(groups.intersection(required) for required in self.access_groups or [])


class EvaluationCase(PublicIdMixin, TenantScopedModel):
    """A question with the answer and sources the assistant is expected to give."""

    question = models.TextField()
    expected_answer = models.TextField()
    # Knowledge document ids (as strings) a good answer cites.
    expected_source_ids = models.JSONField(default=list, blank=True)
    curated_answer = models.ForeignKey(
        CuratedAnswer, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The last replay's result: {cites_expected, similarity, judge, agrees, at}.
    last_result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.question[:80]
