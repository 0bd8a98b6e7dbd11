"""Drift: a synthetic shift in question topics and retrieval scores alerts (once, with a
`drift.alert` event); an unshifted week does not. Unanswered-topic clusters and stale sources."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
from django.utils import timezone

from apps.analytics.drift import drift_check
from apps.analytics.models import DriftAlert, DriftKind, DriftReport, UnansweredCluster
from apps.analytics.tests.factories import answer, ask, at, citation
from apps.conversations import services as chat
from apps.events.models import Event, EventType
from apps.knowledge.models import Document, Source

# Monday noon: the window is the 7 days before Monday 00:00, the baseline the 28 before that.
NOW = dt.datetime(2026, 3, 16, 12, 0, tzinfo=dt.UTC)
WINDOW_START = dt.date(2026, 3, 9)
BASELINE_START = dt.date(2026, 2, 9)

BILLING = [
    f"{q.format(x=x)}"
    for q, x in itertools.product(
        [
            "Why was I charged twice on my {x} invoice?",
            "How do I update the credit card for my {x} subscription?",
            "Can I get a refund for my {x} plan?",
            "Where can I download my {x} invoice as a PDF?",
            "My {x} payment failed, what should I do?",
        ],
        [
            "monthly",
            "annual",
            "team",
            "pro",
            "basic",
            "March",
            "business",
            "family",
            "student",
            "yearly",
        ],
    )
]
HEADPHONES = [
    f"{q.format(x=x)}"
    for q, x in itertools.product(
        [
            "How do I pair my {x} headphones over bluetooth?",
            "My {x} earbuds keep disconnecting from my phone",
            "The {x} headset microphone does not work on calls",
            "How do I turn on noise cancelling on the {x} headphones?",
            "The left {x} earbud is not charging in the case",
        ],
        ["wireless", "sport", "studio", "mini", "pro", "kids", "travel", "gaming"],
    )
]


def _day(rng: random.Random, start: dt.date, days: int) -> dt.datetime:
    day = start + dt.timedelta(days=rng.randrange(days))
    return at(day, rng.randrange(8, 20), rng.randrange(60))


def _question(world, text: str, when: dt.datetime, *, top_score: float, decision="answer"):
    conversation = chat.conversation_start(tenant=world.tenant)
    ask(conversation, text, when=when)
    return answer(
        conversation,
        decision=decision,
        citations=[citation()] if decision == "answer" else [],
        retrieval=[
            {"chunk_id": "1", "document_id": "1", "score": top_score, "rank": 1},
            {"chunk_id": "2", "document_id": "1", "score": top_score / 2, "rank": 2},
        ],
        when=when,
    )


def _baseline(world, rng: random.Random) -> None:
    """Four weeks of billing questions, answered with confident retrieval."""
    for text in rng.sample(BILLING, 40):
        _question(
            world,
            text,
            _day(rng, BASELINE_START, 28),
            top_score=round(rng.uniform(0.70, 0.90), 3),
        )


@pytest.fixture
def drift_settings(settings):
    settings.DRIFT_MIN_SAMPLES = 20
    settings.DRIFT_PERMUTATIONS = 200
    return settings


@pytest.mark.django_db
@pytest.mark.usefixtures("drift_settings")
def test_new_topic_and_lower_retrieval_scores_raise_alerts_once(tenant_a, tenant_b):
    rng = random.Random(7)
    _baseline(tenant_a, rng)
    # This week: a product line the knowledge does not cover. Retrieval finds little; most
    # answers hand off.
    for i, text in enumerate(rng.sample(HEADPHONES, 25)):
        _question(
            tenant_a,
            text,
            _day(rng, WINDOW_START, 7),
            top_score=round(rng.uniform(0.25, 0.45), 3),
            decision="handoff" if i % 5 else "answer",
        )

    report = drift_check(tenant=tenant_a.tenant, now=NOW)

    questions = report.stats["questions"]
    assert (questions["current_n"], questions["baseline_n"]) == (25, 40)
    assert questions["shifted"], questions
    assert questions["p_value"] < 0.01
    assert questions["mean_cosine_distance"] >= 0.1
    retrieval = report.stats["retrieval"]
    assert retrieval["shifted"], retrieval
    assert retrieval["ks_statistic"] == pytest.approx(1.0)  # the two score ranges do not overlap

    alerts = DriftAlert.objects.for_tenant(tenant_a.tenant)
    assert {a.kind for a in alerts} == {DriftKind.QUESTION_SHIFT, DriftKind.RETRIEVAL_SCORE_SHIFT}
    alert = alerts.get(kind=DriftKind.QUESTION_SHIFT)
    assert alert.window_start == timezone.make_aware(dt.datetime(2026, 3, 9), dt.UTC)
    assert "differ" in alert.message
    events = Event.objects.for_tenant(tenant_a.tenant).filter(type=EventType.DRIFT_ALERT)
    assert events.count() == 2
    assert {e.payload["kind"] for e in events} == {a.kind for a in alerts}

    # The unanswered headphone questions form a topic, labelled with its words.
    clusters = list(UnansweredCluster.objects.for_tenant(tenant_a.tenant).filter(report=report))
    assert clusters, report.stats
    biggest = clusters[0]
    assert biggest.size >= 5
    headphone_words = {"headphones", "earbuds", "earbud", "headset", "bluetooth", "charging"}
    assert headphone_words & set(biggest.terms), biggest.terms
    assert all(example in HEADPHONES for example in biggest.examples)
    assert not any(text in BILLING for c in clusters for text in c.examples)

    # Running the same week again updates the report but adds no alert and no event.
    again = drift_check(tenant=tenant_a.tenant, now=NOW + dt.timedelta(hours=3))
    assert again.pk == report.pk
    assert DriftAlert.objects.for_tenant(tenant_a.tenant).count() == 2
    assert events.count() == 2
    assert UnansweredCluster.objects.for_tenant(tenant_a.tenant).count() == len(clusters)

    # Tenant B saw none of it.
    assert not DriftAlert.objects.for_tenant(tenant_b.tenant).exists()
    assert not Event.objects.for_tenant(tenant_b.tenant).filter(type=EventType.DRIFT_ALERT).exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("drift_settings")
def test_an_unshifted_week_does_not_alert(tenant_a):
    rng = random.Random(11)
    _baseline(tenant_a, rng)
    # This week: more of the same billing questions and the same retrieval confidence.
    for text in rng.sample(BILLING, 25):
        _question(
            tenant_a,
            text,
            _day(rng, WINDOW_START, 7),
            top_score=round(rng.uniform(0.70, 0.90), 3),
        )

    report = drift_check(tenant=tenant_a.tenant, now=NOW)

    assert report.stats["questions"]["current_n"] == 25
    assert not report.stats["questions"]["shifted"], report.stats["questions"]
    assert report.stats["questions"]["mean_cosine_distance"] < 0.1
    assert not report.stats["retrieval"]["shifted"], report.stats["retrieval"]
    assert not DriftAlert.objects.for_tenant(tenant_a.tenant).exists()
    assert not Event.objects.for_tenant(tenant_a.tenant).filter(type=EventType.DRIFT_ALERT).exists()
    assert not UnansweredCluster.objects.for_tenant(tenant_a.tenant).exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("drift_settings")
def test_too_few_questions_are_not_compared(tenant_a):
    for text in BILLING[:5]:
        _question(tenant_a, text, at(WINDOW_START), top_score=0.8)
    report = drift_check(tenant=tenant_a.tenant, now=NOW)
    assert "skipped" in report.stats["questions"]
    assert "skipped" in report.stats["retrieval"]
    assert not DriftAlert.objects.for_tenant(tenant_a.tenant).exists()


@pytest.mark.django_db
def test_sources_cited_but_not_synced_for_long_are_stale(tenant_a, settings):
    settings.ANALYTICS_STALE_SOURCE_DAYS = 30
    tenant = tenant_a.tenant
    old = Source.objects.create(
        tenant=tenant,
        name="Old pricing page",
        kind=Source.Kind.URL,
        url="https://a.example/p",
        last_synced_at=NOW - dt.timedelta(days=90),
    )
    fresh = Source.objects.create(
        tenant=tenant, name="Shipping", kind=Source.Kind.TEXT, last_synced_at=timezone.now()
    )
    uncited = Source.objects.create(
        tenant=tenant, name="Never cited", kind=Source.Kind.TEXT, last_synced_at=None
    )
    old_doc = Document.objects.create(tenant=tenant, source=old, key="https://a.example/p")
    fresh_doc = Document.objects.create(tenant=tenant, source=fresh, key="text")
    Document.objects.create(tenant=tenant, source=uncited, key="text")

    conversation = chat.conversation_start(tenant=tenant)
    when = at(WINDOW_START + dt.timedelta(days=2))
    ask(conversation, "How much is the pro plan?", when=when)
    # Citations as the assistant stores them: ids as strings.
    answer(
        conversation,
        citations=[
            {**citation(1), "document_id": str(old_doc.pk)},
            {**citation(2), "document_id": str(fresh_doc.pk)},
        ],
        when=when,
    )
    ask(conversation, "And the team plan?", when=when)
    answer(conversation, citations=[{**citation(1), "document_id": str(old_doc.pk)}], when=when)

    report = drift_check(tenant=tenant, now=NOW)

    assert [s["name"] for s in report.stale_sources] == ["Old pricing page"]
    assert report.stale_sources[0]["citations"] == 2
    assert report.stale_sources[0]["public_id"] == str(old.public_id)
    assert DriftReport.objects.for_tenant(tenant).count() == 1
