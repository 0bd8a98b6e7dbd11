"""Query shaping and the reranking stage of hybrid retrieval (docs/retrieval.md).

Three pieces, all cheap enough for the customer's first token:

- :func:`split_query` separates the question sentence from the scenario around it ("I received
  the Guarantee Credit ... Can I apply directly to my supplier?"), so both retrievers can weigh
  the question more than the story.
- :func:`sentence_windows` cuts a chunk into windows of consecutive sentences; at ingestion
  each window is embedded with the index's own model and stored, int8-quantised, in the
  point's payload (:func:`pack_vectors`).
- :func:`rerank` re-scores the fused candidates: their fused score, blended with exact-phrase
  matches, the support of other candidates from the same page, and (weight 0 by default) the
  best window's cosine to the question (max-sim) and title/heading matches.
"""

from __future__ import annotations

import base64
import itertools
import math
import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from apps.knowledge.vectorstore.base import SearchHit

# Payload key of the packed sentence-window vectors (absent on points from older indexes).
WINDOWS_FIELD = "windows"
# Sentences per window, and the most windows one chunk keeps (a 256-token chunk has ~10-15
# sentences; more windows only add payload bytes the rerank must read).
WINDOW_SENTENCES = 2
MAX_WINDOWS = 12

_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+(?=\S)|\s*\n+\s*")
_WORD_RE = re.compile(r"\w+", re.UNICODE)
# ASCII punctuation and the typographic quotes, dashes and bullets help pages use.
_TYPOGRAPHIC = "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u2022\u00b7\u00ab\u00bb"
_PUNCTUATION = str.maketrans(dict.fromkeys(string.punctuation + _TYPOGRAPHIC, " "))

# Words that carry no topic: a phrase or title match on them alone means nothing.
_GLUE_TEXT = """
a an and are as at be but by can could do does for from has have how i if in into is it its me
my of on or our so than that the their them then there these they this to was we were what when
where which who why will with would you your am not no yes any get got may should
"""
_GLUE = frozenset(_GLUE_TEXT.split())


# --------------------------------------------------------------------------- query side


@dataclass(frozen=True, slots=True)
class QueryParts:
    """A customer's message as the question sentence and the scenario around it.

    ``context`` is "" when the message is a single sentence (or the split would leave a
    question too short to stand alone); ``question`` is then the whole message.
    """

    question: str
    context: str = ""

    @property
    def full(self) -> str:
        return f"{self.context}\n{self.question}" if self.context else self.question


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_SPLIT_RE.split(text) if part and part.strip()]


def content_words(text: str) -> list[str]:
    """Lowercased words that are not glue words, in order."""
    norm = unicodedata.normalize("NFKC", text).casefold()
    return [w for w in _WORD_RE.findall(norm) if w not in _GLUE and w != "_"]


def split_query(text: str) -> QueryParts:
    """The question sentence (the last one ending in "?", else the last) and the rest."""
    text = (text or "").strip()
    parts = _sentences(text)
    if len(parts) < 2:
        return QueryParts(question=text)
    asks = [i for i, part in enumerate(parts) if part.endswith("?")]
    at = asks[-1] if asks else len(parts) - 1
    question = parts[at]
    if len(content_words(question)) < 2:  # "Can I?" says nothing without its scenario
        return QueryParts(question=text)
    context = " ".join(parts[:at] + parts[at + 1 :])
    return QueryParts(question=question, context=context)


def mix_query_vectors(full: np.ndarray, question: np.ndarray, question_weight: float) -> np.ndarray:
    """Unit vector of ``full + question_weight * question`` (the dense query)."""
    mixed = np.asarray(full, dtype=np.float32) + question_weight * np.asarray(
        question, dtype=np.float32
    )
    norm = float(np.linalg.norm(mixed))
    return mixed / norm if norm > 0 else np.asarray(full, dtype=np.float32)


def weighted_query_terms(
    parts: QueryParts, tokenize: Callable[[str], list[str]], context_weight: float
) -> dict[str, float]:
    """Sparse query weights by term: 1 for the question's terms, ``context_weight`` for terms
    only the scenario has."""
    weights = dict.fromkeys(tokenize(parts.context), context_weight) if parts.context else {}
    weights.update(dict.fromkeys(tokenize(parts.question), 1.0))
    return weights


# --------------------------------------------------------------------------- document side


def sentence_windows(text: str) -> list[str]:
    """Windows of :data:`WINDOW_SENTENCES` consecutive sentences (stride 1, at most
    :data:`MAX_WINDOWS`, spread evenly over the chunk when it has more)."""
    sentences = _sentences(text)
    if len(sentences) <= WINDOW_SENTENCES:
        return [" ".join(sentences)] if sentences else []
    windows = [
        " ".join(sentences[i : i + WINDOW_SENTENCES])
        for i in range(len(sentences) - WINDOW_SENTENCES + 1)
    ]
    if len(windows) > MAX_WINDOWS:
        step = len(windows) / MAX_WINDOWS
        windows = [windows[int(i * step)] for i in range(MAX_WINDOWS)]
    return windows


def window_texts(text: str, heading_path: Sequence[str] = ()) -> list[str]:
    """What is embedded for each window: the chunk's headings (title first), then the window.
    The headings carry the topic: FAQ answers rarely repeat their question."""
    head = " > ".join(h for h in heading_path if h)
    return [f"{head}\n{window}" if head else window for window in sentence_windows(text)]


def pack_vectors(vectors: np.ndarray) -> str:
    """Unit vectors as base64 int8 rows (each row scaled to its largest component)."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    scale = np.abs(vectors).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    quantised = np.round(vectors / scale * 127.0).astype(np.int8)
    return f"{vectors.shape[1]}:" + base64.b64encode(quantised.tobytes()).decode("ascii")


def unpack_vectors(packed: str) -> np.ndarray | None:
    """The unit vectors :func:`pack_vectors` stored (re-normalised), or None if unreadable."""
    try:
        dim_text, data = packed.split(":", 1)
        raw = np.frombuffer(base64.b64decode(data), dtype=np.int8).astype(np.float32)
        rows = raw.reshape(-1, int(dim_text))
    except (ValueError, AttributeError, TypeError):
        return None
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return rows / norms


# --------------------------------------------------------------------------- rerank


@dataclass(frozen=True, slots=True)
class RerankWeights:
    """How the rerank blends its signals (docs/retrieval.md says how they were chosen).

    ``fused``: the fusion's score, min-max normalised over the candidates; ``maxsim``: the best
    sentence window's cosine to the question, min-max normalised; ``phrase``: share of the
    question's word pairs found verbatim in the chunk; ``title``: share of the question's
    content words found in the title and headings; ``page``: the best normalised fused score
    among the *other* candidates from the same page (:func:`page_key`), so a chunk whose page
    the retrievers agree on is lifted even when its own words match the question less well
    (a rule's "Your pay" section on the Working Tax Credit page).

    The defaults are the blend with the best average over every evaluation set: the phrase
    and page signals helped everywhere; max-sim helped StackFAQ and the demo set but cost
    OR-ShARC more, and title matches hurt OR-ShARC, whose snippets share page titles
    (docs/retrieval.md has the grid).
    """

    fused: float = 1.0
    maxsim: float = 0.0
    phrase: float = 0.15
    title: float = 0.0
    page: float = 0.2


@dataclass(frozen=True, slots=True)
class RerankQuery:
    parts: QueryParts
    vector: np.ndarray | None  # unit vector of the question sentence (None: no max-sim)


def _minmax(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    low, high = min(values), max(values)
    span = high - low
    return [(v - low) / span if span > 1e-9 else 1.0 for v in values]


def _pairs(words: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(words))


def all_words(text: str) -> list[str]:
    """Lowercased words, glue words included, in order."""
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold())


def phrase_pairs(question_words: Sequence[str]) -> list[str]:
    """The question's consecutive word pairs (not both glue words), as " a b " to look for."""
    pairs = {p for p in _pairs(question_words) if not (p[0] in _GLUE and p[1] in _GLUE)}
    return sorted(f" {a} {b} " for a, b in pairs)


def spaced_words(text: str) -> str:
    """The text's words, lowercased, one space between and around them, for pair lookups.

    Punctuation becomes space through a translation table and whitespace is collapsed by
    ``split``: both C loops, ten times faster than a Unicode regex over a 1,500-character chunk
    (the rerank does this for 40 chunks per question).
    """
    norm = unicodedata.normalize("NFKC", text).casefold().translate(_PUNCTUATION)
    return f" {' '.join(norm.split())} "


def phrase_score(pairs: Sequence[str], spaced_text: str) -> float:
    """Share of :func:`phrase_pairs` that the text (:func:`spaced_words`) has verbatim."""
    if not pairs:
        return 0.0
    return sum(1 for pair in pairs if pair in spaced_text) / len(pairs)


def title_score(question_terms: set[str], heading_text: str) -> float:
    """Share of the question's content words that appear in the title and headings."""
    if not question_terms:
        return 0.0
    return len(question_terms & set(content_words(heading_text))) / len(question_terms)


def page_key(hit: SearchHit) -> str:
    """The page a chunk belongs to: its address without the fragment, else its document, else
    the point alone.

    Chunks of one document are one page; so are documents that share an address (a help page
    imported as one document per section, or one URL's sections as separate entries)."""
    payload = hit.payload or {}
    url = str(payload.get("url") or "").split("#", 1)[0].strip()
    if url:
        return f"url:{url}"
    document = str(payload.get("document_id") or "")
    return f"doc:{document}" if document else f"point:{hit.id}"


def page_support(keys: Sequence[str], fused: Sequence[float]) -> list[float]:
    """For each candidate, the best ``fused`` value among the other candidates of its page
    (0 when it is the only one)."""
    by_page: dict[str, list[float]] = {}
    for key, value in zip(keys, fused, strict=True):
        by_page.setdefault(key, []).append(value)
    top_two = {key: sorted(values, reverse=True)[:2] for key, values in by_page.items()}
    support = []
    for key, value in zip(keys, fused, strict=True):
        top = top_two[key]
        # The best other value: the page's runner-up when this candidate is the page's best.
        support.append(0.0 if len(top) < 2 else top[1] if value >= top[0] else top[0])
    return support


def maxsim_score(query_vector: np.ndarray, payload: dict[str, Any]) -> float | None:
    packed = payload.get(WINDOWS_FIELD)
    if not packed:
        return None
    windows = unpack_vectors(packed)
    if windows is None or windows.shape[1] != query_vector.shape[0]:
        return None
    return float((windows @ query_vector).max())


def rerank(
    hits: Sequence[SearchHit],
    *,
    query: RerankQuery,
    weights: RerankWeights,
    limit: int,
) -> list[SearchHit]:
    """Re-score fused candidates (best first) and return the best ``limit``.

    Only reorders what the store returned (already tenant- and access-filtered). Candidates
    without window vectors (points from an index built before them) get the max-sim of the
    weakest candidate that has them, so they are neither favoured nor dropped; when none has
    them the max-sim signal is left out. The page signal counts only candidates in ``hits``:
    it moves nothing the store did not return. Ties keep the fused order.
    """
    if not hits:
        return []
    question_terms = set(content_words(query.parts.question))
    pairs = phrase_pairs(spaced_words(query.parts.question).split())
    fused = _minmax([h.score for h in hits])
    sims: list[float | None] = [None] * len(hits)
    if query.vector is not None and weights.maxsim:
        sims = [maxsim_score(query.vector, h.payload) for h in hits]
    known = [s for s in sims if s is not None]
    maxsim = _minmax([s if s is not None else min(known) for s in sims]) if known else None
    support = page_support([page_key(h) for h in hits], fused) if weights.page else None
    scored: list[tuple[float, int]] = []
    for i, hit in enumerate(hits):
        payload = hit.payload
        text = str(payload.get("text", ""))
        headings = " ".join(
            [str(payload.get("title", "")), *map(str, payload.get("heading_path") or [])]
        )
        score = weights.fused * fused[i]
        if maxsim is not None:
            score += weights.maxsim * maxsim[i]
        if weights.phrase and pairs:
            score += weights.phrase * phrase_score(pairs, spaced_words(text))
        if weights.title:
            score += weights.title * title_score(question_terms, headings)
        if support is not None:
            score += weights.page * support[i]
        scored.append((score, i))
    scored.sort(key=lambda item: (-item[0], item[1]))
    out = []
    for score, i in scored[:limit]:
        out.append(replace(hits[i], score=round(score, 6) if math.isfinite(score) else 0.0))
    return out
