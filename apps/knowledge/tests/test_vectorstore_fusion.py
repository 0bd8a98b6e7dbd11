"""Unit tests of hybrid fusion (`vectorstore.fusion.fuse`): the arithmetic, ties and limits."""

from __future__ import annotations

import pytest

from apps.knowledge.vectorstore.base import SearchHit
from apps.knowledge.vectorstore.fusion import HybridFusion, fuse


def ranked(name: str, *scored: tuple[str, float]) -> list[SearchHit]:
    return [SearchHit(id=i, score=s, payload={"id": i}, found_by={name}) for i, s in scored]


DENSE = ranked("dense", ("a", 0.9), ("b", 0.7), ("c", 0.5))
SPARSE = ranked("sparse", ("c", 12.0), ("d", 4.0))


def test_convex_weights_min_max_normalised_scores():
    hits = fuse(DENSE, SPARSE, limit=10, fusion=HybridFusion("convex", dense_weight=0.8))
    scores = {h.id: h.score for h in hits}
    # dense: a=1, b=0.5, c=0; sparse: c=1, d=0.
    assert scores == pytest.approx({"a": 0.8, "b": 0.4, "c": 0.2, "d": 0.0})
    assert [h.id for h in hits] == ["a", "b", "c", "d"]
    assert {h.id: h.found_by for h in hits} == {
        "a": {"dense"},
        "b": {"dense"},
        "c": {"dense", "sparse"},
        "d": {"sparse"},
    }
    assert hits[0].payload == {"id": "a"}


def test_rrf_weights_reciprocal_ranks():
    hits = fuse(DENSE, SPARSE, limit=10, fusion=HybridFusion("rrf", dense_weight=0.5, rrf_k=1))
    scores = {h.id: h.score for h in hits}
    assert scores == pytest.approx(
        {"a": 0.5 / 2, "b": 0.5 / 3, "c": 0.5 / 4 + 0.5 / 2, "d": 0.5 / 3}
    )
    # c is first; b and d tie and are ordered by id.
    assert [h.id for h in hits] == ["c", "a", "b", "d"]


def test_limit_and_empty_side():
    hits = fuse(DENSE, [], limit=2, fusion=HybridFusion())
    assert [h.id for h in hits] == ["a", "b"]
    assert all(h.found_by == {"dense"} for h in hits)
    assert fuse([], [], limit=5, fusion=HybridFusion()) == []


def test_fusion_does_not_change_its_inputs():
    dense = ranked("dense", ("a", 0.9), ("b", 0.7))
    fuse(dense, ranked("sparse", ("a", 3.0)), limit=5, fusion=HybridFusion())
    assert [(h.score, h.found_by) for h in dense] == [(0.9, {"dense"}), (0.7, {"dense"})]


@pytest.mark.parametrize(
    "kwargs",
    [{"method": "max"}, {"dense_weight": 1.5}, {"dense_weight": -0.1}, {"rrf_k": 0}],
)
def test_bad_fusion_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        HybridFusion(**kwargs)


def test_score_margin_compares_the_best_with_the_fifth():
    from apps.knowledge.vectorstore.fusion import score_margin

    five = ranked("dense", ("a", 1.0), ("b", 0.9), ("c", 0.8), ("d", 0.7), ("e", 0.6), ("f", 0.1))
    assert score_margin(five) == pytest.approx(0.4)
    assert score_margin(ranked("sparse", ("a", 10.0), ("b", 5.0))) == pytest.approx(0.5)
    assert score_margin([]) == 0.0
    assert score_margin(ranked("dense", ("a", -0.2), ("b", -0.3))) == 0.0


def test_adaptive_fusion_leans_towards_the_more_decided_retriever():
    # Dense hardly separates its hits (margin 0.2); sparse clearly prefers d (margin 0.75).
    dense = ranked("dense", ("a", 0.50), ("b", 0.45), ("c", 0.40))
    sparse = ranked("sparse", ("d", 8.0), ("a", 2.0))
    fixed = HybridFusion("convex", dense_weight=0.6)
    adaptive = HybridFusion("convex", dense_weight=0.6, adaptive=0.5)
    assert fixed.weight_for(dense, sparse) == 0.6
    assert adaptive.weight_for(dense, sparse) == pytest.approx(0.6 + 0.5 * (0.2 - 0.75))
    assert fuse(dense, sparse, limit=4, fusion=fixed)[0].id == "a"
    assert fuse(dense, sparse, limit=4, fusion=adaptive)[0].id == "d"
    # The weight stays within its bounds, and one empty list leaves it alone.
    assert HybridFusion(dense_weight=0.6, adaptive=10.0).weight_for(dense, sparse) == 0.1
    assert adaptive.weight_for(dense, []) == 0.6
    with pytest.raises(ValueError):
        HybridFusion(adaptive=-1.0)
