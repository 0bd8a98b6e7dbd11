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

This module runs the check and records it; the statistics are in `drift_statistics`, what it
reads of a window in `drift_queries`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from scipy import stats as scipy_stats

from apps.analytics.drift_queries import (
    customer_questions,
    stale_sources,
    top_retrieval_scores,
    unanswered_questions,
)
from apps.analytics.drift_statistics import (
    cluster_questions,
    energy_distance_test,
    mean_cosine_distance,
    sample,
)
from apps.analytics.models import DriftAlert, DriftKind, DriftReport, UnansweredCluster
from apps.core.observability import metrics
from apps.events.models import EventType
from apps.events.services import event_record
from apps.knowledge.runtime import get_embedder

logger = logging.getLogger(__name__)


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


def _embed(texts: list[str]) -> np.ndarray:
    return get_embedder().embed_documents(texts)


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
    current = sample(current, settings.DRIFT_MAX_SAMPLES, rng)
    baseline = sample(baseline, settings.DRIFT_MAX_SAMPLES, rng)
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
    unanswered = sample(unanswered, settings.DRIFT_MAX_SAMPLES, rng)
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
