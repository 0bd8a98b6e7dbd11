"""Daily roll-ups from a known day of conversations equal numbers worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.analytics.models import DailyTenantStats
from apps.analytics.services import rollup_compute
from apps.analytics.tasks import rollup_day
from apps.analytics.tests.factories import answer, ask, at, citation, move_conversation, resolve
from apps.conversations import feedback
from apps.conversations import services as chat

DAY = dt.date(2026, 3, 10)
BEFORE = DAY - dt.timedelta(days=1)


def _known_day(world) -> None:
    """Five conversations started on DAY (and one the day before); see the test for the sums."""
    tenant = world.tenant

    # C1: answered with a source, resolved by the assistant alone.
    c1 = chat.conversation_start(tenant=tenant)
    ask(c1, "How do I reset my password?")
    answer(
        c1,
        citations=[citation()],
        retrieval_ms=100,
        first_token_ms=400,
        total_ms=1000,
        prompt_tokens=200,
        completion_tokens=50,
    )
    resolve(c1)
    move_conversation(c1, at(DAY, 9))

    # C2: answered, thumbs up, resolved by the assistant alone, CSAT 5.
    c2 = chat.conversation_start(tenant=tenant)
    ask(c2, "Where is my invoice?")
    a2 = answer(
        c2,
        citations=[citation()],
        retrieval_ms=200,
        first_token_ms=500,
        total_ms=2000,
        prompt_tokens=300,
        completion_tokens=80,
    )
    feedback.feedback_record(conversation=c2, kind="thumbs", rating="up", message=a2)
    resolve(c2)
    feedback.feedback_record(conversation=c2, kind="csat", rating=5)
    move_conversation(c2, at(DAY, 10))

    # C3: a clarifying question, then a handoff; an agent answers and resolves; CSAT 3.
    c3 = chat.conversation_start(tenant=tenant)
    ask(c3, "It does not work")
    answer(
        c3,
        decision="clarify",
        retrieval_ms=300,
        first_token_ms=600,
        total_ms=1500,
        prompt_tokens=100,
        completion_tokens=20,
    )
    ask(c3, "The export to Excel")
    answer(c3, decision="handoff", retrieval_ms=400, total_ms=300)
    chat.handoff_request(conversation=c3, reason="low_confidence")
    chat.message_post_agent(conversation=c3, agent=world.agent, content="Let me check.")
    resolve(c3)
    feedback.feedback_record(conversation=c3, kind="csat", rating=3)
    move_conversation(c3, at(DAY, 11))

    # C4: excerpts without the model (extractive), thumbs down, still open.
    c4 = chat.conversation_start(tenant=tenant)
    ask(c4, "Do you ship to Norway?")
    a4 = answer(
        c4,
        decision="extractive",
        citations=[citation()],
        retrieval_ms=500,
        first_token_ms=700,
        total_ms=800,
    )
    feedback.feedback_record(conversation=c4, kind="thumbs", rating="down", message=a4)
    move_conversation(c4, at(DAY, 12))

    # C5: opened the widget, wrote nothing.
    c5 = chat.conversation_start(tenant=tenant)
    move_conversation(c5, at(DAY, 13))

    # C6: the day before: must not count on DAY.
    c6 = chat.conversation_start(tenant=tenant)
    ask(c6, "Yesterday's question")
    answer(c6, citations=[citation()], retrieval_ms=9000, first_token_ms=9000, total_ms=9000)
    resolve(c6)
    move_conversation(c6, at(BEFORE, 12))

    # Resolutions happen on DAY (C6's the day before).
    for conversation in (c1, c2, c3):
        resolve(conversation, when=at(DAY, 16))
    resolve(c6, when=at(BEFORE, 16))


@pytest.mark.django_db
def test_rollup_of_a_known_day_equals_hand_computed_numbers(tenant_a, tenant_b):
    _known_day(tenant_a)
    # Tenant B has a busy day too; none of it may leak into A's numbers.
    other = chat.conversation_start(tenant=tenant_b.tenant)
    ask(other, "Bluebird question")
    answer(other, decision="handoff", retrieval_ms=7777, total_ms=7777)
    move_conversation(other, at(DAY, 12))

    stats = rollup_compute(tenant=tenant_a.tenant, day=DAY)

    # Worked out by hand from _known_day:
    assert stats.conversations_started == 5  # C1..C5
    assert stats.conversations_active == 4  # C1..C4 have a customer message
    assert stats.messages_customer == 5  # 1 + 1 + 2 + 1
    assert stats.messages_assistant == 5  # 1 + 1 + 2 + 1
    assert stats.messages_agent == 1
    assert stats.messages_system == 0
    assert stats.conversations_resolved == 3  # C1, C2, C3
    assert stats.conversations_ai_resolved == 2  # C1, C2 (C3 had a handoff and an agent)
    assert stats.ai_resolution_rate == pytest.approx(2 / 3)
    assert stats.conversations_handed_off == 1  # C3
    assert stats.handoff_rate == pytest.approx(1 / 4)
    assert stats.conversations_deflected == 3  # C1, C2, C4 (extractive helps too)
    assert stats.deflection_rate == pytest.approx(3 / 4)
    assert stats.answers == 5
    assert stats.answers_unanswered == 3  # C3 clarify, C3 handoff, C4 extractive
    assert stats.unanswered_rate == pytest.approx(0.6)
    assert (stats.thumbs_up, stats.thumbs_down) == (1, 1)
    assert stats.thumbs_up_rate == pytest.approx(0.5)
    assert stats.csat_count == 2
    assert stats.csat_average == pytest.approx(4.0)  # (5 + 3) / 2
    # retrieval 100, 200, 300, 400, 500: p50 = 300; p95 at rank 0.95 * 4 = 3.8 -> 400 + 0.8 * 100
    assert stats.retrieval_ms_p50 == pytest.approx(300)
    assert stats.retrieval_ms_p95 == pytest.approx(480)
    # first token 400, 500, 600, 700 (the handoff has none): p50 = 550; p95 at 2.85 -> 685
    assert stats.first_token_ms_p50 == pytest.approx(550)
    assert stats.first_token_ms_p95 == pytest.approx(685)
    # total 300, 800, 1000, 1500, 2000: p50 = 1000; p95 at 3.8 -> 1500 + 0.8 * 500 = 1900
    assert stats.total_ms_p50 == pytest.approx(1000)
    assert stats.total_ms_p95 == pytest.approx(1900)
    assert stats.prompt_tokens == 600  # 200 + 300 + 100
    assert stats.completion_tokens == 150  # 50 + 80 + 20


@pytest.mark.django_db
def test_rollup_is_recomputable_and_keeps_one_row_per_day(tenant_a):
    _known_day(tenant_a)
    first = rollup_compute(tenant=tenant_a.tenant, day=DAY)
    rollup_day(tenant_id=tenant_a.tenant.pk, day=DAY.isoformat())
    again = DailyTenantStats.objects.for_tenant(tenant_a.tenant).get(day=DAY)
    assert again.pk == first.pk
    assert DailyTenantStats.objects.for_tenant(tenant_a.tenant).filter(day=DAY).count() == 1
    assert again.conversations_started == 5 and again.ai_resolution_rate == pytest.approx(2 / 3)

    # The day before is its own row, with C6 only.
    before = rollup_compute(tenant=tenant_a.tenant, day=BEFORE)
    assert (before.conversations_started, before.conversations_resolved) == (1, 1)
    assert before.conversations_ai_resolved == 1
    assert before.retrieval_ms_p50 == pytest.approx(9000)


@pytest.mark.django_db
def test_empty_day_has_no_rates(tenant_a):
    stats = rollup_compute(tenant=tenant_a.tenant, day=DAY)
    assert stats.conversations_started == 0
    assert stats.ai_resolution_rate is None
    assert stats.deflection_rate is None
    assert stats.csat_average is None
    assert stats.retrieval_ms_p95 is None


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_rollup_yesterday_computes_every_active_tenant(tenant_a, tenant_b):
    from django.utils import timezone

    from apps.analytics.tasks import rollup_yesterday

    tenant_b.tenant.is_active = False
    tenant_b.tenant.save(update_fields=["is_active"])
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    conversation = chat.conversation_start(tenant=tenant_a.tenant)
    move_conversation(conversation, at(yesterday, 12))

    assert rollup_yesterday() == 2  # one active tenant, yesterday and the day before
    stats = DailyTenantStats.objects.for_tenant(tenant_a.tenant).get(day=yesterday)
    assert stats.conversations_started == 1
    assert not DailyTenantStats.objects.for_tenant(tenant_b.tenant).exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager", "fresh_cache")
def test_dispatched_feedback_event_refreshes_the_days_rollup(tenant_a):
    from django.utils import timezone
    from prometheus_client import REGISTRY

    from apps.events.models import Event, EventType
    from apps.events.tasks import dispatch_event

    counted = REGISTRY.get_sample_value("supportai_events_total", {"type": "feedback.received"})
    conversation = chat.conversation_start(tenant=tenant_a.tenant)
    ask(conversation, "Thanks!")
    reply = answer(conversation, citations=[citation()])
    feedback.feedback_record(conversation=conversation, kind="thumbs", rating="up", message=reply)
    event = Event.objects.for_tenant(tenant_a.tenant).get(type=EventType.FEEDBACK_RECEIVED)

    dispatch_event(event.pk)

    stats = DailyTenantStats.objects.for_tenant(tenant_a.tenant).get(day=timezone.localdate())
    assert (stats.thumbs_up, stats.answers) == (1, 1)
    after = REGISTRY.get_sample_value("supportai_events_total", {"type": "feedback.received"})
    assert after == (counted or 0) + 1
