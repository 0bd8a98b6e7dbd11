"""Answerability: how sure the evidence answers the question (0-1, a weighted score of its
signals), and the threshold below which the engine does not answer."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.assistant.evidence import Evidence

# Answerability = weighted evidence signals, each 0-1 (calibrated on the demo answer set with
# `manage.py evaluate_answers`; docs/chat.md has the numbers).
COSINE_FLOOR, COSINE_CEILING = 0.2, 0.65
WEIGHT_COSINE, WEIGHT_KEYWORDS, WEIGHT_COVERAGE = 0.5, 0.25, 0.25
# Taken off for each question word the knowledge never uses (nor a synonym: "kids", "rent",
# "hiring"), at most MISSING_MAX; and when a "how much" question finds no amount.
MISSING_PENALTY, MISSING_MAX = 0.1, 0.3
NO_AMOUNT_PENALTY = 0.2


def answerability(found: Evidence) -> tuple[float, dict[str, Any]]:
    """How sure the knowledge answers the question, 0-1, and the signals it came from."""
    best = found.best
    if best is None:
        return 0.0, {"cosine": 0.0, "keywords": 0.0, "coverage": 0.0}
    cosine = min(1.0, max(0.0, (best.cosine - COSINE_FLOOR) / (COSINE_CEILING - COSINE_FLOOR)))
    keywords = min(1.0, best.keywords)
    score = WEIGHT_COSINE * cosine + WEIGHT_KEYWORDS * keywords + WEIGHT_COVERAGE * found.coverage
    score -= min(MISSING_MAX, MISSING_PENALTY * len(found.missing))
    if found.wanted_type_found is False:
        score -= NO_AMOUNT_PENALTY
    if best.kind == "curated":
        # An agent's answer to a question this similar (curated answers are only retrieved at
        # WORKSPACE_CURATED_MIN_SIMILARITY or above) answers it, whatever words the knowledge
        # lacks.
        matched = float(getattr(found.chunks[best.chunk], "score", 0.0) or 0.0)
        score = max(score, matched)
    signals: dict[str, Any] = {
        "cosine": round(best.cosine, 3),
        "keywords": round(best.keywords, 3),
        "coverage": round(found.coverage, 3),
    }
    if found.missing:
        signals["missing"] = found.missing[:5]
    if found.wanted_type_found is not None:
        signals["amount_found"] = found.wanted_type_found
    return round(max(0.0, score), 3), signals


def threshold_for(tenant: Any) -> float:
    value = getattr(tenant, "answer_threshold", None)
    return settings.ASSISTANT_ANSWERABILITY_THRESHOLD if value is None else float(value)
