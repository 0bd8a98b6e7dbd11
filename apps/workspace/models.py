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


class Inbox(PublicIdMixin, TenantScopedModel):
    """A queue of conversations; agents work the inboxes they hold `work_inbox` on."""

    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False)

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

    class Meta:
        verbose_name = "conversation routing"

    def __str__(self) -> str:
        return f"{self.conversation_id} → {self.inbox}"


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
