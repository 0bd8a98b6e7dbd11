"""Unit tests of the pure parts: statistics, clustering, model output checks, charts, CSV."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from apps.analytics import charts
from apps.analytics.drift_statistics import (
    cluster_questions,
    energy_distance_test,
    mean_cosine_distance,
)
from apps.analytics.insights import _cell, clean_result
from apps.analytics.services import percentile


def test_energy_distance_test_separates_shifted_samples_only():
    rng = np.random.default_rng(0)
    same = energy_distance_test(
        rng.normal(size=(30, 4)), rng.normal(size=(40, 4)), permutations=200, seed=1
    )
    shifted = energy_distance_test(
        rng.normal(size=(30, 4)) + 1.0, rng.normal(size=(40, 4)), permutations=200, seed=1
    )
    assert same[1] > 0.05
    assert shifted[1] < 0.01 and shifted[0] > same[0]
    # Deterministic for a seed.
    x, y = rng.normal(size=(10, 3)), rng.normal(size=(12, 3))
    assert energy_distance_test(x, y, permutations=50, seed=3) == energy_distance_test(
        x, y, permutations=50, seed=3
    )


def test_mean_cosine_distance():
    x = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert mean_cosine_distance(x, x) == pytest.approx(0.0)
    assert mean_cosine_distance(x, np.array([[0.0, 1.0]])) == pytest.approx(1.0)


def test_percentile_interpolates_linearly():
    assert percentile([], 50) is None
    assert percentile([100, 200, 300, 400, 500], 95) == pytest.approx(480)
    assert percentile([7], 95) == pytest.approx(7)


def test_clusters_group_similar_vectors_and_label_them_with_distinctive_terms():
    questions = [
        "refund my invoice please",
        "invoice refund not received",
        "refund for the invoice",
        "bluetooth headphones pairing fails",
        "pairing bluetooth headphones",
        "lonely question",
    ]
    vectors = np.array(
        [[1, 0.1, 0], [1, 0.0, 0.1], [0.9, 0.1, 0], [0, 1, 0.1], [0.1, 1, 0], [0, 0, 1]],
        dtype=float,
    )
    clusters = cluster_questions(questions, vectors, distance=0.3, min_size=2)
    assert [c["size"] for c in clusters] == [3, 2]
    assert {"refund", "invoice"} <= set(clusters[0]["terms"][:2])
    assert {"bluetooth", "headphones", "pairing"} == set(clusters[1]["terms"][:3])
    assert "lonely question" not in [e for c in clusters for e in c["examples"]]
    assert cluster_questions(questions[:1], vectors[:1], distance=0.3, min_size=2) == []


def test_model_output_is_checked_and_normalised():
    summary, topics = clean_result(
        {"summary": "  Customer  was refunded. ", "topics": ["Billing", "billing", " Refund. ", 3]}
    )
    assert summary == "Customer was refunded."
    assert topics == ["billing", "refund"]
    with pytest.raises(ValueError):
        clean_result({"summary": "", "topics": []})
    with pytest.raises(ValueError):
        clean_result({"summary": "ok", "topics": "billing"})


def test_csv_cells_that_look_like_formulas_are_quoted():
    assert _cell("=SUM(A1)") == "'=SUM(A1)"
    assert _cell("@cmd") == "'@cmd"
    assert _cell("plain") == "plain"
    assert _cell(None) == ""


def test_chart_escapes_names_and_leaves_gaps():
    svg = charts.chart(
        title="<script>alert(1)</script>",
        days=[dt.date(2026, 3, d) for d in (1, 2, 3)],
        series=[charts.Series("<b>x</b>", "#000", [1.0, None, 3.0])],
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<b>x</b>" not in svg
    assert svg.count("<polyline") == 2  # the missing day splits the line
