"""Hybrid fusion: how one search combines the dense and the sparse ranking (docs/retrieval.md),
by convex combination of min-max normalised scores or by reciprocal ranks, with a dense weight
that may adapt per query to the more decided retriever."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from apps.knowledge.vectorstore.base import (
    DENSE_VECTOR,
    FUSION_METHODS,
    RRF_K,
    SPARSE_VECTOR,
    FusionMethod,
    SearchHit,
)


@dataclass(frozen=True, slots=True)
class HybridFusion:
    """How a hybrid search combines the dense and the sparse ranking (docs/retrieval.md).

    ``convex``: each list's scores min-max normalised over its candidates, then
    ``dense_weight * dense + (1 - dense_weight) * sparse``. ``rrf``: the same weights on
    reciprocal ranks, ``1 / (rrf_k + rank)``. A hit missing from one list gets 0 from it.

    ``adaptive`` moves the dense weight per query towards the more decided retriever:
    ``dense_weight + adaptive * (margin(dense) - margin(sparse))``, kept within
    ``ADAPTIVE_BOUNDS``, where a list's margin is how far its best score stands above its
    fifth, relative to the best (:func:`score_margin`). 0 keeps the weight fixed.
    """

    method: FusionMethod = "convex"
    dense_weight: float = 0.8
    rrf_k: int = RRF_K
    adaptive: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise ValueError(f"fusion method must be one of {FUSION_METHODS}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError("dense_weight must be between 0 and 1")
        if self.rrf_k < 1:
            raise ValueError("rrf_k must be at least 1")
        if self.adaptive < 0:
            raise ValueError("adaptive must not be negative")

    def weight_for(
        self, dense_hits: Sequence[SearchHit], sparse_hits: Sequence[SearchHit]
    ) -> float:
        """The dense weight for this query (``dense_weight`` unless ``adaptive``)."""
        if not self.adaptive or not dense_hits or not sparse_hits:
            return self.dense_weight
        shift = self.adaptive * (score_margin(dense_hits) - score_margin(sparse_hits))
        low, high = ADAPTIVE_BOUNDS
        return min(high, max(low, self.dense_weight + shift))


DEFAULT_FUSION = HybridFusion()

# Adaptive fusion: the rank a list's best score is compared with, and the range the dense
# weight may move in (neither retriever is ever switched off).
MARGIN_RANK = 5
ADAPTIVE_BOUNDS = (0.1, 0.9)


def score_margin(ranked: Sequence[SearchHit]) -> float:
    """``(best - fifth best) / best`` of a ranking's scores (0 when the best is not positive):
    how clearly the retriever prefers its first hit over the rest."""
    if not ranked:
        return 0.0
    best = ranked[0].score
    if best <= 0:
        return 0.0
    other = ranked[min(MARGIN_RANK, len(ranked)) - 1].score
    return (best - other) / best


def _minmax(hits: Sequence[SearchHit]) -> dict[str, float]:
    if not hits:
        return {}
    high = max(h.score for h in hits)
    low = min(h.score for h in hits)
    span = high - low
    return {h.id: (h.score - low) / span if span > 1e-9 else 1.0 for h in hits}


def fuse(
    dense_hits: Sequence[SearchHit],
    sparse_hits: Sequence[SearchHit],
    *,
    limit: int,
    fusion: HybridFusion,
) -> list[SearchHit]:
    """Combine two rankings of one collection, best first; ``found_by`` says who found each.

    Ties are broken by id, so the order does not depend on the engine's order of equal scores.
    """
    scores: dict[str, float] = {}
    hits: dict[str, SearchHit] = {}
    dense_weight = fusion.weight_for(dense_hits, sparse_hits)
    for name, ranked, weight in (
        (DENSE_VECTOR, dense_hits, dense_weight),
        (SPARSE_VECTOR, sparse_hits, 1 - dense_weight),
    ):
        if fusion.method == "convex":
            contribution = _minmax(ranked)
        else:
            contribution = {
                h.id: 1.0 / (fusion.rrf_k + rank) for rank, h in enumerate(ranked, start=1)
            }
        for hit in ranked:
            if hit.id not in hits:
                hits[hit.id] = SearchHit(id=hit.id, score=0.0, payload=hit.payload, found_by=set())
            hits[hit.id].found_by.add(name)
            scores[hit.id] = scores.get(hit.id, 0.0) + weight * contribution[hit.id]
    ordered = sorted(scores, key=lambda i: (-scores[i], i))[:limit]
    return [replace(hits[point_id], score=scores[point_id]) for point_id in ordered]
