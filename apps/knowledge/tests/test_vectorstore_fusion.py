"""Unit tests of hybrid fusion (`vectorstore.base.fuse`): the arithmetic, ties and limits."""

from __future__ import annotations

import pytest

from apps.knowledge.vectorstore.base import HybridFusion, SearchHit, fuse


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
