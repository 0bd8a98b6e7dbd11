"""The statistics of the drift check (drift.py), free of the database: the energy-distance
permutation test and the cosine distance of mean embeddings for question shift, sampling, and
the clustering of unanswered questions labelled with their most distinctive terms.

The stopwords left out of cluster labels are data, in `data/stopwords.txt` (one a line).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster import hierarchy

MAX_CLUSTERS = 10
EXAMPLES_PER_CLUSTER = 5
LABEL_TERMS = 3
STOPWORDS = frozenset(
    (Path(__file__).parent / "data" / "stopwords.txt").read_text(encoding="utf-8").split()
)
_WORD_RE = re.compile(r"[a-z][a-z0-9'\-]{2,}")


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


def sample(items: list[Any], limit: int, rng: np.random.Generator) -> list[Any]:
    """At most `limit` of `items`, drawn without replacement, in their order."""
    if len(items) <= limit:
        return items
    picked = sorted(rng.choice(len(items), size=limit, replace=False))
    return [items[i] for i in picked]


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
