"""Nightly summaries against the real local LLM server: only new resolved conversations, safe to
run twice (and at the same time), shown in the admin, exported as CSV per tenant."""

from __future__ import annotations

import csv
import io
import threading

import pytest
from django.db import connection

from apps.analytics import insights
from apps.analytics.models import ConversationInsight, InsightStatus
from apps.analytics.tasks import summarize_resolved_conversations_tenant
from apps.analytics.tests.factories import answer, ask, citation, resolve
from apps.conversations import services as chat
from apps.conversations.models import Conversation
from tests.support.llm import llm_server, llm_settings  # noqa: F401


def _conversation(world, question: str, reply: str, *, resolved: bool = True) -> Conversation:
    conversation = chat.conversation_start(tenant=world.tenant)
    ask(conversation, question)
    answer(conversation, content=reply, citations=[citation()])
    if resolved:
        conversation = resolve(conversation)
    return conversation


@pytest.mark.integration
@pytest.mark.usefixtures("llm_settings")
@pytest.mark.django_db
def test_batch_summarises_only_new_resolved_conversations_and_is_safe_to_rerun(tenant_a, tenant_b):
    refund = _conversation(
        tenant_a, "I was charged twice for my March invoice.", "I refunded the duplicate charge."
    )
    shipping = _conversation(
        tenant_a, "Do you ship to Norway?", "Yes, delivery to Norway takes 5 days."
    )
    still_open = _conversation(tenant_a, "Where is my parcel?", "Let me look.", resolved=False)
    other_tenant = _conversation(tenant_b, "Bluebird question", "Bluebird answer")

    assert insights.insights_generate(tenant=tenant_a.tenant) == 2

    rows = {i.conversation_id: i for i in ConversationInsight.objects.for_tenant(tenant_a.tenant)}
    assert set(rows) == {refund.pk, shipping.pk}  # not the open one, not tenant B's
    for conversation in (refund, shipping):
        insight = rows[conversation.pk]
        assert insight.status == InsightStatus.DONE, insight.error
        assert insight.summary.strip()
        assert isinstance(insight.topics, list) and len(insight.topics) <= insights.MAX_TOPICS
        assert all(isinstance(t, str) and t == t.lower() for t in insight.topics)
        assert insight.model == "smollm2-135m-instruct"
        assert (
            insight.resolved_at
            == Conversation.objects.for_tenant(tenant_a.tenant).get(pk=conversation.pk).resolved_at
        )
        stored = Conversation.objects.for_tenant(tenant_a.tenant).get(pk=conversation.pk)
        assert (stored.summary, stored.topics) == (insight.summary, insight.topics)
    assert not ConversationInsight.objects.for_tenant(tenant_b.tenant).exists()
    first = {pk: (i.summarized_at, i.summary) for pk, i in rows.items()}

    # Twice: nothing new, nothing redone.
    assert insights.insights_generate(tenant=tenant_a.tenant) == 0
    assert summarize_resolved_conversations_tenant(tenant_id=tenant_a.tenant.pk) == 0
    again = {
        i.conversation_id: (i.summarized_at, i.summary)
        for i in ConversationInsight.objects.for_tenant(tenant_a.tenant)
    }
    assert again == first

    # A conversation resolved later is picked up by the next run, and only it.
    chat.conversation_resolve(conversation=still_open)
    assert insights.insights_generate(tenant=tenant_a.tenant) == 1
    assert ConversationInsight.objects.for_tenant(tenant_a.tenant).count() == 3
    assert other_tenant.pk not in set(
        ConversationInsight.objects.for_tenant(tenant_a.tenant).values_list(
            "conversation_id", flat=True
        )
    )


@pytest.mark.integration
@pytest.mark.usefixtures("llm_settings")
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_summarise_each_conversation_once(tenant_a, monkeypatch):
    for n in range(4):
        _conversation(tenant_a, f"Question number {n} about invoices", "Answer with a source.")
    calls: list[int] = []
    original = insights._ask_all

    async def counting(jobs):
        calls.extend(job.conversation_id for job in jobs)
        await original(jobs)

    monkeypatch.setattr(insights, "_ask_all", counting)
    results: list[int] = []

    def run() -> None:
        try:
            results.append(insights.insights_generate(tenant=tenant_a.tenant))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert sum(results) == 4
    assert sorted(calls) == sorted(set(calls)) and len(calls) == 4  # nobody asked twice
    assert (
        ConversationInsight.objects.for_tenant(tenant_a.tenant).filter(status="done").count() == 4
    )


@pytest.mark.integration
@pytest.mark.usefixtures("llm_settings")
@pytest.mark.django_db
def test_a_failed_summary_is_retried_on_a_later_run(tenant_a, settings):
    conversation = _conversation(tenant_a, "My card was declined", "Try another card.")
    good_url = settings.LLM_BASE_URL
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens there
    assert insights.insights_generate(tenant=tenant_a.tenant) == 0
    insight = ConversationInsight.objects.for_tenant(tenant_a.tenant).get()
    assert insight.status == InsightStatus.FAILED and insight.attempts == 1 and insight.error

    settings.LLM_BASE_URL = good_url
    assert insights.insights_generate(tenant=tenant_a.tenant) == 1
    insight.refresh_from_db()
    assert insight.status == InsightStatus.DONE and insight.attempts == 2
    assert insight.conversation_id == conversation.pk


# --- Admin and export -------------------------------------------------------------------------


def _insight(world, summary: str, topics: list[str]) -> ConversationInsight:
    conversation = _conversation(world, "q", "a")
    return ConversationInsight.objects.create(
        tenant=world.tenant,
        conversation=conversation,
        resolved_at=conversation.resolved_at,
        status=InsightStatus.DONE,
        summary=summary,
        topics=topics,
    )


@pytest.mark.django_db
def test_admin_lists_only_own_tenants_insights_and_exports_them(client, tenant_a, tenant_b):
    _insight(tenant_a, "Acme refund summary", ["billing"])
    theirs = _insight(tenant_b, "=HYPERLINK(bluebird secret)", ["bikes"])

    client.force_login(tenant_a.admin)
    page = client.get("/admin/analytics/conversationinsight/")
    assert page.status_code == 200
    assert b"billing" in page.content and b"bikes" not in page.content

    mine = ConversationInsight.objects.for_tenant(tenant_a.tenant).get()
    response = client.post(
        "/admin/analytics/conversationinsight/",
        {"action": "export_csv", "_selected_action": [mine.pk, theirs.pk]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:2] == ["conversation_id", "resolved_at"]
    assert [r[5] for r in rows[1:]] == ["Acme refund summary"]  # B's row is not exported

    client.force_login(tenant_a.agent)
    assert client.get("/admin/analytics/conversationinsight/").status_code == 403


@pytest.mark.django_db
def test_dashboard_csv_is_the_viewers_tenant_only_and_formula_safe(client, tenant_a, tenant_b):
    _insight(tenant_a, "=cmd|' /C calc'!A0", ["billing", "refund"])
    _insight(tenant_b, "Bluebird only", ["bikes"])

    client.force_login(tenant_a.owner)
    response = client.get("/dashboard/insights.csv")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert len(rows) == 2
    assert rows[1][4] == "billing; refund"
    assert rows[1][5].startswith("'=")  # a spreadsheet shows it as text, never runs it
    assert "Bluebird" not in response.content.decode()

    assert client.get("/dashboard/insights.csv?tenant=bluebird").status_code == 404
    client.force_login(tenant_a.agent)
    assert client.get("/dashboard/insights.csv").status_code == 403
