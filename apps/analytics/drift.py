"""Weekly quality and drift check of one tenant.

1. Questions: this window's customer questions against the baseline weeks before it, as
   sentence embeddings. The energy distance between the two samples is tested with a
   permutation test; the cosine distance between the two mean embeddings is the effect size.
2. Retrieval: the top retrieval score of each answer, this window against the baseline, with a
   two-sample Kolmogorov-Smirnov test.
3. Unanswered topics: questions the assistant did not answer (docs/analytics.md) or whose answer
   got a thumbs down, clustered (average linkage on cosine distance) and labelled with their
   most distinctive terms.
4. Stale sources: sources cited in answers of the window whose last sync is older than
   ANALYTICS_STALE_SOURCE_DAYS.

A shift alerts only if it is significant (p < DRIFT_P_VALUE) *and* large enough (its effect size
passes its threshold), so a big but unchanged week does not alert. Each alert is recorded once
per tenant, kind and window, with a `drift.alert` event for webhooks.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from scipy import stats as scipy_stats
from scipy.cluster import hierarchy

from apps.analytics import metrics
from apps.analytics.models import DriftAlert, DriftKind, DriftReport, UnansweredCluster
from apps.analytics.services import ANSWERED_DECISIONS
from apps.conversations.models import (
    Feedback,
    FeedbackKind,
    Message,
    MessageRole,
    MessageStatus,
)
from apps.events.models import EventType
from apps.events.services import event_record

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
MAX_CLUSTERS = 10
EXAMPLES_PER_CLUSTER = 5
LABEL_TERMS = 3
STOPWORDS = frozenset(
    (
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "did",
        "didn",
        "do",
        "does",
        "doesn",
        "doing",
        "don",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "get",
        "got",
        "had",
        "has",
        "hasn",
        "have",
        "haven",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "isn",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "need",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "please",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "thank",
        "thanks",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "want",
        "was",
        "wasn",
        "way",
        "we",
        "were",
        "weren",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "won",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "hi",
        "hello",
        "hey",
        "can't",
        "i'm",
        "it's",
        "don't",
    )
)
_WORD_RE = re.compile(r"[a-z][a-z0-9'\-]{2,}")


@dataclass(frozen=True)
class Windows:
    window_start: dt.datetime
    window_end: dt.datetime
    baseline_start: dt.datetime


def drift_windows(now: dt.datetime | None = None) -> Windows:
    """The window ends at the last local midnight; the baseline is the days before it."""
    now = timezone.localtime(now or timezone.now())
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=settings.DRIFT_WINDOW_DAYS)
    return Windows(
        window_start=start,
        window_end=end,
        baseline_start=start - dt.timedelta(days=settings.DRIFT_BASELINE_DAYS),
    )


# --- Statistics -----------------------------------------------------------------------------------


def energy_distance_test(
    x: np.ndarray, y: np.ndarray, *, permutations: int, seed: int
) -> tuple[float, float]:
    """Energy distance between samples x and y (rows) and its permutation-test p-value."""
    pooled = np.vstack([x, y]).astype(np.float64)
    n, total = len(x), len(pooled)
    squared = np.sum(pooled**2, axis=1)
    distances = np.sqrt(
        np.maximum(squared[:, None] + squared[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    )

    def statistics(labels: np.ndarray) -> np.ndarray:
        # labels: (total, k) 0/1 columns, 1 for rows of the first sample.
        a = labels
        b = 1.0 - labels
        da = distances @ a
        db = distances @ b
        n_a = a.sum(axis=0)
        n_b = b.sum(axis=0)
        xy = np.sum(b * da, axis=0) / (n_a * n_b)
        xx = np.sum(a * da, axis=0) / (n_a * n_a)
        yy = np.sum(b * db, axis=0) / (n_b * n_b)
        return 2.0 * xy - xx - yy

    observed_labels = np.zeros((total, 1))
    observed_labels[:n, 0] = 1.0
    observed = float(statistics(observed_labels)[0])
    rng = np.random.default_rng(seed)
    permuted = np.zeros((total, permutations))
    for column in range(permutations):
        permuted[rng.permutation(total)[:n], column] = 1.0
    null = statistics(permuted)
    p_value = (1.0 + float(np.sum(null >= observed - 1e-12))) / (1.0 + permutations)
    return observed, p_value


def mean_cosine_distance(x: np.ndarray, y: np.ndarray) -> float:
    mx, my = x.mean(axis=0), y.mean(axis=0)
    denominator = float(np.linalg.norm(mx) * np.linalg.norm(my))
    if denominator == 0.0:
        return 0.0
    return float(1.0 - float(mx @ my) / denominator)


def _sample(items: list[Any], limit: int, rng: np.random.Generator) -> list[Any]:
    if len(items) <= limit:
        return items
    picked = sorted(rng.choice(len(items), size=limit, replace=False))
    return [items[i] for i in picked]


def _embed(texts: list[str]) -> np.ndarray:
    from apps.knowledge.runtime import get_embedder

    return get_embedder().embed_documents(texts)


# --- Data -----------------------------------------------------------------------------------------


def customer_questions(*, tenant: Any, start: dt.datetime, end: dt.datetime) -> list[str]:
    return [
        text.strip()[:MAX_QUESTION_CHARS]
        for text in Message.objects.for_tenant(tenant)
        .filter(role=MessageRole.CUSTOMER, created_at__gte=start, created_at__lt=end)
        .exclude(content="")
        .order_by("id")
        .values_list("content", flat=True)
        if text.strip()
    ]


def top_retrieval_scores(*, tenant: Any, start: dt.datetime, end: dt.datetime) -> list[float]:
    """The best retrieval score of each assistant message (from `Message.retrieval`)."""
    scores = []
    for retrieval in (
        Message.objects.for_tenant(tenant)
        .filter(role=MessageRole.ASSISTANT, created_at__gte=start, created_at__lt=end)
        .values_list("retrieval", flat=True)
    ):
        values = [
            float(item["score"])
            for item in retrieval or []
            if isinstance(item, dict) and isinstance(item.get("score"), int | float)
        ]
        if values:
            scores.append(max(values))
    return scores


def unanswered_questions(*, tenant: Any, start: dt.datetime, end: dt.datetime) -> list[str]:
    """The customer question before each unanswered or thumbs-down answer in the window."""
    answers = Message.objects.for_tenant(tenant).filter(
        role=MessageRole.ASSISTANT,
        status__in=[MessageStatus.COMPLETE, MessageStatus.FAILED],
        created_at__gte=start,
        created_at__lt=end,
    )
    wanted: dict[int, int] = {}  # assistant message id -> conversation id
    for pk, conversation_id, status, decision, citations in answers.values_list(
        "pk", "conversation_id", "status", "decision", "citations"
    ):
        if not (status == MessageStatus.COMPLETE and decision in ANSWERED_DECISIONS and citations):
            wanted[pk] = conversation_id
    for message_id, conversation_id in (
        Feedback.objects.for_tenant(tenant)
        .filter(
            kind=FeedbackKind.THUMBS,
            rating="down",
            created_at__gte=start,
            created_at__lt=end,
            message__isnull=False,
        )
        .values_list("message_id", "conversation_id")
    ):
        wanted[message_id] = conversation_id
    if not wanted:
        return []
    by_conversation: dict[int, tuple[list[int], list[str]]] = {}
    for pk, conversation_id, content in (
        Message.objects.for_tenant(tenant)
        .filter(role=MessageRole.CUSTOMER, conversation_id__in=set(wanted.values()))
        .exclude(content="")
        .order_by("id")
        .values_list("pk", "conversation_id", "content")
    ):
        ids, texts = by_conversation.setdefault(conversation_id, ([], []))
        ids.append(pk)
        texts.append(content.strip()[:MAX_QUESTION_CHARS])
    questions = []
    for answer_id, conversation_id in sorted(wanted.items()):
        ids, texts = by_conversation.get(conversation_id, ([], []))
        position = bisect.bisect_left(ids, answer_id) - 1
        if position >= 0:
            questions.append(texts[position])
    return questions


def stale_sources(*, tenant: Any, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    from apps.knowledge.models import Document, Source

    cited: Counter[int] = Counter()
    for citations in (
        Message.objects.for_tenant(tenant)
        .filter(role=MessageRole.ASSISTANT, created_at__gte=start, created_at__lt=end)
        .exclude(citations=[])
        .values_list("citations", flat=True)
    ):
        for citation in citations or []:
            # The assistant stores ids as strings ("12"); older rows may hold numbers.
            document_id = citation.get("document_id") if isinstance(citation, dict) else None
            if isinstance(document_id, int) or (
                isinstance(document_id, str) and document_id.isdigit()
            ):
                cited[int(document_id)] += 1
    if not cited:
        return []
    per_source: Counter[int] = Counter()
    for document_id, source_id in (
        Document.objects.for_tenant(tenant)
        .filter(pk__in=list(cited))
        .values_list("pk", "source_id")
    ):
        per_source[source_id] += cited[document_id]
    cutoff = timezone.now() - dt.timedelta(days=settings.ANALYTICS_STALE_SOURCE_DAYS)
    stale = []
    for source in Source.objects.for_tenant(tenant).filter(pk__in=list(per_source)):
        if source.last_synced_at is None or source.last_synced_at < cutoff:
            stale.append(
                {
                    "source_id": source.pk,
                    "public_id": str(source.public_id),
                    "name": source.name,
                    "kind": source.kind,
                    "last_synced_at": (
                        source.last_synced_at.isoformat() if source.last_synced_at else None
                    ),
                    "citations": per_source[source.pk],
                }
            )
    stale.sort(key=lambda s: (-s["citations"], s["name"]))
    return stale


# --- Clusters -------------------------------------------------------------------------------------


def _terms(text: str) -> list[str]:
    return [w.strip("'-") for w in _WORD_RE.findall(text.lower()) if w not in STOPWORDS]


def cluster_questions(
    questions: list[str], vectors: np.ndarray, *, distance: float, min_size: int
) -> list[dict[str, Any]]:
    """Groups of similar questions, largest first, each with top terms and examples."""
    if len(questions) < max(2, min_size):
        return []
    links = hierarchy.linkage(vectors.astype(np.float64), method="average", metric="cosine")
    labels = hierarchy.fcluster(links, t=distance, criterion="distance")
    document_frequency: Counter[str] = Counter()
    for question in questions:
        document_frequency.update(set(_terms(question)))
    clusters = []
    for label in set(labels.tolist()):
        members = np.flatnonzero(labels == label)
        if len(members) < min_size:
            continue
        counts: Counter[str] = Counter()
        for i in members:
            counts.update(_terms(questions[i]))
        scored = sorted(
            counts.items(),
            key=lambda item: (
                -item[1] * math.log(1.0 + len(questions) / document_frequency[item[0]]),
                item[0],
            ),
        )
        terms = [term for term, _ in scored[:6]]
        centroid = vectors[members].mean(axis=0)
        order = members[np.argsort(-(vectors[members] @ centroid))]
        examples: list[str] = []
        for i in order:
            if questions[i] not in examples:
                examples.append(questions[i])
            if len(examples) >= EXAMPLES_PER_CLUSTER:
                break
        clusters.append(
            {
                "label": " · ".join(terms[:LABEL_TERMS]) or examples[0][:60],
                "terms": terms,
                "size": len(members),
                "examples": examples,
            }
        )
    clusters.sort(key=lambda c: (-c["size"], c["label"]))
    return clusters[:MAX_CLUSTERS]


# --- The check ------------------------------------------------------------------------------------


def _question_shift(
    *, tenant: Any, windows: Windows, rng: np.random.Generator, seed: int
) -> dict[str, Any]:
    current = customer_questions(tenant=tenant, start=windows.window_start, end=windows.window_end)
    baseline = customer_questions(
        tenant=tenant, start=windows.baseline_start, end=windows.window_start
    )
    result: dict[str, Any] = {"current_n": len(current), "baseline_n": len(baseline)}
    if min(len(current), len(baseline)) < settings.DRIFT_MIN_SAMPLES:
        result["skipped"] = f"fewer than {settings.DRIFT_MIN_SAMPLES} questions in a window"
        return result
    current = _sample(current, settings.DRIFT_MAX_SAMPLES, rng)
    baseline = _sample(baseline, settings.DRIFT_MAX_SAMPLES, rng)
    vectors = _embed(current + baseline)
    x, y = vectors[: len(current)], vectors[len(current) :]
    statistic, p_value = energy_distance_test(
        x, y, permutations=settings.DRIFT_PERMUTATIONS, seed=seed
    )
    distance = mean_cosine_distance(x, y)
    result.update(
        {
            "energy_distance": statistic,
            "p_value": p_value,
            "mean_cosine_distance": distance,
            "p_threshold": settings.DRIFT_P_VALUE,
            "distance_threshold": settings.DRIFT_QUESTION_MIN_DISTANCE,
            "shifted": p_value < settings.DRIFT_P_VALUE
            and distance >= settings.DRIFT_QUESTION_MIN_DISTANCE,
        }
    )
    return result


def _retrieval_shift(*, tenant: Any, windows: Windows) -> dict[str, Any]:
    current = top_retrieval_scores(
        tenant=tenant, start=windows.window_start, end=windows.window_end
    )
    baseline = top_retrieval_scores(
        tenant=tenant, start=windows.baseline_start, end=windows.window_start
    )
    result: dict[str, Any] = {"current_n": len(current), "baseline_n": len(baseline)}
    if min(len(current), len(baseline)) < settings.DRIFT_MIN_SAMPLES:
        result["skipped"] = f"fewer than {settings.DRIFT_MIN_SAMPLES} answers in a window"
        return result
    test = scipy_stats.ks_2samp(current, baseline)
    result.update(
        {
            "ks_statistic": float(test.statistic),
            "p_value": float(test.pvalue),
            "current_median": float(np.median(current)),
            "baseline_median": float(np.median(baseline)),
            "p_threshold": settings.DRIFT_P_VALUE,
            "statistic_threshold": settings.DRIFT_KS_MIN_STATISTIC,
            "shifted": float(test.pvalue) < settings.DRIFT_P_VALUE
            and float(test.statistic) >= settings.DRIFT_KS_MIN_STATISTIC,
        }
    )
    return result


def drift_check(*, tenant: Any, now: dt.datetime | None = None) -> DriftReport:
    """Run the four checks for the window ending at the last midnight; record the report and
    any alerts (once per window: running it again updates the report, adds no alert)."""
    if tenant is None:
        raise ValueError("drift_check needs a tenant")
    windows = drift_windows(now)
    seed = int(tenant.pk) * 1_000_003 + windows.window_end.date().toordinal()
    rng = np.random.default_rng(seed)

    questions = _question_shift(tenant=tenant, windows=windows, rng=rng, seed=seed)
    retrieval = _retrieval_shift(tenant=tenant, windows=windows)
    unanswered = unanswered_questions(
        tenant=tenant, start=windows.window_start, end=windows.window_end
    )
    unanswered = _sample(unanswered, settings.DRIFT_MAX_SAMPLES, rng)
    clusters = (
        cluster_questions(
            unanswered,
            _embed(unanswered),
            distance=settings.DRIFT_CLUSTER_DISTANCE,
            min_size=settings.DRIFT_CLUSTER_MIN_SIZE,
        )
        if len(unanswered) >= 2
        else []
    )
    stale = stale_sources(tenant=tenant, start=windows.window_start, end=windows.window_end)
    return _record(
        tenant=tenant,
        windows=windows,
        stats={"questions": questions, "retrieval": retrieval, "unanswered_n": len(unanswered)},
        clusters=clusters,
        stale=stale,
    )


def _alert_message(kind: str, values: dict[str, Any]) -> str:
    if kind == DriftKind.QUESTION_SHIFT:
        return (
            f"Customer questions this week differ from the previous weeks "
            f"(cosine distance of means {values['mean_cosine_distance']:.2f}, "
            f"p={values['p_value']:.3f})."
        )
    return (
        f"Top retrieval scores shifted (median {values['baseline_median']:.3f} → "
        f"{values['current_median']:.3f}, KS={values['ks_statistic']:.2f}, "
        f"p={values['p_value']:.2g})."
    )


@transaction.atomic
def _record(
    *,
    tenant: Any,
    windows: Windows,
    stats: dict[str, Any],
    clusters: list[dict[str, Any]],
    stale: list[dict[str, Any]],
) -> DriftReport:
    report, _ = DriftReport.objects.update_or_create(
        tenant=tenant,
        window_end=windows.window_end,
        defaults={
            "window_start": windows.window_start,
            "baseline_start": windows.baseline_start,
            "computed_at": timezone.now(),
            "stats": stats,
            "stale_sources": stale,
        },
    )
    UnansweredCluster.objects.for_tenant(tenant).filter(report=report).delete()
    UnansweredCluster.objects.bulk_create(
        [UnansweredCluster(tenant=tenant, report=report, **cluster) for cluster in clusters]
    )
    checks = {
        DriftKind.QUESTION_SHIFT: (stats["questions"], "energy_distance"),
        DriftKind.RETRIEVAL_SCORE_SHIFT: (stats["retrieval"], "ks_statistic"),
    }
    for kind, (values, statistic_key) in checks.items():
        if not values.get("shifted"):
            continue
        alert, created = DriftAlert.objects.get_or_create(
            tenant=tenant,
            kind=kind,
            window_end=windows.window_end,
            defaults={
                "report": report,
                "window_start": windows.window_start,
                "statistic": values[statistic_key],
                "p_value": values["p_value"],
                "message": _alert_message(kind, values),
                "details": values,
            },
        )
        if not created:
            continue
        event_record(
            tenant=tenant,
            type=EventType.DRIFT_ALERT,
            payload={
                "alert_id": alert.pk,
                "kind": alert.kind,
                "message": alert.message,
                "window_start": alert.window_start.isoformat(),
                "window_end": alert.window_end.isoformat(),
                "statistic": alert.statistic,
                "p_value": alert.p_value,
            },
        )
        transaction.on_commit(lambda kind=kind: metrics.drift_alert_recorded(kind))
        logger.warning("drift alert %s for tenant %s: %s", kind, tenant.pk, alert.message)
    return report
