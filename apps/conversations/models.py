"""Customers, their conversations, the messages in them and the feedback they leave."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import Max, Q

from apps.core.models import PublicIdMixin, TenantScopedModel


class Contact(PublicIdMixin, TenantScopedModel):
    """A customer of a tenant. Identified by the tenant's own id (`sub` of the end-user token)."""

    external_id = models.CharField(max_length=255, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    name = models.CharField(max_length=200, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~Q(external_id=""),
                name="contact_unique_external_id",
            )
        ]
        ordering = ["tenant_id", "-created_at"]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id or f"contact {self.pk}"


class ConversationStatus(models.TextChoices):
    OPEN = "open", "Open (assistant answers)"
    WAITING_FOR_HUMAN = "waiting_for_human", "Waiting for a person"
    WITH_AGENT = "with_agent", "With an agent"
    RESOLVED = "resolved", "Resolved"


# The assistant answers only in these states; a person owns the conversation otherwise.
ASSISTANT_ACTIVE_STATUSES = frozenset({ConversationStatus.OPEN, ConversationStatus.RESOLVED})


class Channel(models.TextChoices):
    WIDGET = "widget", "Widget"
    API = "api", "API"
    EMAIL = "email", "Email"


class HandoffReason(models.TextChoices):
    CUSTOMER_REQUEST = "customer_request", "Customer asked for a person"
    LOW_CONFIDENCE = "low_confidence", "Nothing relevant in the knowledge base"
    MODEL_DECISION = "model_decision", "The assistant decided to hand off"
    LLM_UNAVAILABLE = "llm_unavailable", "The language model was unavailable"
    ROUTING_RULE = "routing_rule", "A routing rule sends it to a person"


class Conversation(PublicIdMixin, TenantScopedModel):
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    widget_key = models.ForeignKey(
        "tenants.WidgetKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=24, choices=ConversationStatus.choices, default=ConversationStatus.OPEN
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WIDGET)
    language = models.CharField(max_length=16, blank=True, default="")
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    handoff_reason = models.CharField(
        max_length=32, choices=HandoffReason.choices, blank=True, default=""
    )
    # The end user's access groups from their signed token, fixed when the conversation starts.
    access_groups = models.JSONField(default=list, blank=True)
    # What routing rules look at, fixed when the conversation starts: {"page_url": str,
    # "claims": {name: str | number | bool | [str]}} (the end-user token's own claims, without
    # the standard ones).
    context = models.JSONField(default=dict, blank=True)
    # Where the team replies when nobody was there (asked for out of office hours), validated.
    reply_email = models.EmailField(blank=True, default="")
    last_message_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Filled by the nightly batch job.
    summary = models.TextField(blank=True, default="")
    topics = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        indexes = [models.Index(fields=["tenant", "status", "last_message_at"])]

    def __str__(self) -> str:
        return f"Conversation {self.public_id}"

    @property
    def assistant_active(self) -> bool:
        return self.status in ASSISTANT_ACTIVE_STATUSES


class MessageRole(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    ASSISTANT = "assistant", "Assistant"
    AGENT = "agent", "Agent"
    SYSTEM = "system", "System"


class MessageStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    STREAMING = "streaming", "Streaming"
    FAILED = "failed", "Failed"


class Decision(models.TextChoices):
    ANSWER = "answer", "Answer"
    CLARIFY = "clarify", "Ask to clarify"
    HANDOFF = "handoff", "Hand off"
    EXTRACTIVE = "extractive", "Excerpts (no language model)"
    DECLINE = "decline", "Declined (not answerable from the knowledge)"


class AnswerStrategy(models.TextChoices):
    """How the answer engine made an assistant message (ASSISTANT_MODE)."""

    EXTRACTIVE = "extractive", "Extractive (sentences from the sources)"
    GENERATIVE = "generative", "Generative (the model, unchecked)"
    GROUNDED = "grounded", "Grounded (the model, checked sentence by sentence)"


class Message(TenantScopedModel):
    """One turn. The auto-increment id orders a conversation and is the replay cursor."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    content = models.TextField(blank=True, default="")
    # [{n, title, url, snippet, chunk_id, document_id, score}]
    citations = models.JSONField(default=list, blank=True)
    # Set by the widget per message so that a re-sent message is stored once.
    # NULL (not "") when absent, so the unique constraint ignores messages without one.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.COMPLETE
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # How an assistant answer came about.
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    prompt_version = models.CharField(max_length=40, blank=True, default="")
    retrieval_ms = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    # True when the server sent no usage and the counts above are estimates.
    tokens_estimated = models.BooleanField(default=False)
    # [{chunk_id, document_id, score, found_by, rank}] for every retrieved chunk, used or not.
    retrieval = models.JSONField(default=list, blank=True)
    # The answer engine's account of an assistant answer: the strategy asked for, how confident
    # it was that the knowledge answers the question (0-1), and what the groundedness guard did:
    # {"outcome": grounded|fell_back|extractive|generative|declined|chitchat, "reason": str,
    #  "dropped": [{"sentence", "reason"}], "signals": {...}}.
    strategy = models.CharField(
        max_length=16, choices=AnswerStrategy.choices, blank=True, default=""
    )
    answerability = models.FloatField(null=True, blank=True)
    grounding = models.JSONField(default=dict, blank=True)
    # The message's number within its conversation (1, 2, 3, ...): the id the widget sees and
    # its replay cursor. The primary key is one sequence over every tenant and would tell a
    # visitor how busy the product is; this number tells them nothing they did not see.
    seq = models.PositiveIntegerField(editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=Q(client_id__isnull=False),
                name="message_unique_client_id",
            ),
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_unique_seq"),
        ]
        indexes = [models.Index(fields=["conversation", "id"])]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding or self.seq is not None:
            super().save(*args, **kwargs)
            return
        # The conversation's row lock orders its messages: the next number is taken and the row
        # inserted before another message of the conversation can take one, so numbers are
        # never shared and a message never appears below a replay cursor already handed out.
        with transaction.atomic():
            list(
                Conversation.objects.for_tenant(self.tenant_id)
                .select_for_update()
                .filter(pk=self.conversation_id)
                .values_list("pk", flat=True)
            )
            last = (
                Message.objects.for_tenant(self.tenant_id)
                .filter(conversation_id=self.conversation_id)
                .aggregate(last=Max("seq"))["last"]
            )
            self.seq = (last or 0) + 1
            super().save(*args, **kwargs)


class FeedbackKind(models.TextChoices):
    THUMBS = "thumbs", "Thumbs up/down on an answer"
    CSAT = "csat", "Satisfaction score for the conversation"


class Feedback(TenantScopedModel):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="feedback"
    )
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="feedback"
    )
    kind = models.CharField(max_length=8, choices=FeedbackKind.choices)
    # "up"/"down" for thumbs, "1".."5" for CSAT.
    rating = models.CharField(max_length=8)
    comment = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The latest thumbs on a message and the latest CSAT of a conversation count.
            models.UniqueConstraint(
                fields=["message"],
                condition=Q(kind="thumbs"),
                name="feedback_one_thumbs_per_message",
            ),
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(kind="csat"),
                name="feedback_one_csat_per_conversation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.rating}"
