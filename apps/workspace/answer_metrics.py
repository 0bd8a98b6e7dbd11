"""Answer-level metrics for `manage.py evaluate_answers --set` (pure functions, no database).

One `AnswerRecord` is one question of an evaluation set answered by one strategy of the answer
engine. `score_answer` checks it; `summarize` turns the scores of one strategy into rates:

- fact recall: facts stated / facts expected, over answerable questions (a fact is a
  case-insensitive regex; a declined answer states none);
- invented-number rate: share of answers with a number (amount, phone number, percentage, time,
  count) that occurs nowhere in the tenant's knowledge nor in the question itself, after
  normalisation ("$6.95" = "6.95 USD" = "6.95", "two hours" = "2 hours", "6 pm" = "18:00",
  "1,000" = "1000"); an amount or a percentage must occur as one ("$7" is invented even
  where the knowledge says "7 business days"); citation markers like [1] and list numbering
  are ignored;
- unsupported-sentence rate: share of the sentences of non-declined answers whose content
  words mostly do not occur in the cited sources' text (`SUPPORT_THRESHOLD`); a lexical check,
  cruder than the engine's guard on purpose, so that it is an independent second opinion;
- citation precision: share of the cited documents that are the question's expected article;
- abstention precision and recall: of the declined answers, the share whose question was out
  of scope; of the out-of-scope questions, the share declined (`is_declined`);
- wrongly declined: share of answerable questions declined;
- markup: answers containing an HTML tag (`<script`, `</p>`, `<br/>`);
- TTFT p50/p95 over `first_token_ms`.

The number normalisation is in `answer_numbers`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.workspace.answer_numbers import (
    invented_numbers,
    numbers_in,
    strip_markers,
    words_to_digits,
)

# A decline is a decision of "decline" or "handoff", or a grounding outcome that says so.
DECLINE_DECISIONS = frozenset({"decline", "handoff"})
DECLINE_OUTCOMES = frozenset({"declined", "chitchat", "handoff"})

# A sentence is unsupported when fewer than half of its content words occur in the cited
# sources ("mostly absent"). Sentences with fewer than MIN_CONTENT_WORDS content words
# ("Sure!", "Hope this helps.") are not judged: too short for a lexical check to mean anything.
SUPPORT_THRESHOLD = 0.5
MIN_CONTENT_WORDS = 3

# --------------------------------------------------------------------------- facts, markup


def _fact_text(answer: str) -> str:
    text = strip_markers(answer)
    text = re.sub(r"\*\*|__|`", "", text)
    return " ".join(text.split())


def fact_matches(answer: str, facts: Sequence[str]) -> list[bool]:
    """For each fact (a case-insensitive regex), whether the answer states it."""
    plain = _fact_text(answer)
    return [
        bool(re.search(fact, answer, re.IGNORECASE) or re.search(fact, plain, re.IGNORECASE))
        for fact in facts
    ]


_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?=[\s/>]|$)")


def markup_in(text: str) -> list[str]:
    """The HTML tags in `text` ("<script", "</p"); autolinks and emails in <> are not tags."""
    return _TAG.findall(text)


# --------------------------------------------------------------------------- sentence support

# Stop words of the lexical support check, one a line (data, not code).
_STOPWORDS = frozenset(
    (Path(__file__).parent / "data" / "answer_stopwords.txt").read_text(encoding="utf-8").split()
)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^a-z\s])|\n+")


def _stem(word: str) -> str:
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def content_words(text: str) -> set[str]:
    """Lower-cased, crudely stemmed words that carry meaning (no stop words, no one-letter
    words); numbers count, with spelled-out ones as digits."""
    text = words_to_digits(text.lower().replace("\u2019", "'"))
    words = set()
    for word in _WORD.findall(text):
        if word in _STOPWORDS or (len(word) < 3 and not word.isdigit()):
            continue
        words.add(word if word.isdigit() else _stem(word.split("'")[0]))
    return words


def sentences(text: str) -> list[str]:
    """The answer's sentences and list items, without citation markers and Markdown marks."""
    text = strip_markers(text)
    text = re.sub(r"\*\*|__|`|^#+\s*|^\s*[-*+]\s+", "", text, flags=re.MULTILINE)
    parts = (
        re.sub(r"\s+([.,;:!?])", r"\1", " ".join(s.split())) for s in _SENTENCE_END.split(text)
    )
    return [s for s in parts if s]


def unsupported_sentences(
    answer: str, sources_text: str, *, threshold: float = SUPPORT_THRESHOLD
) -> tuple[int, list[str]]:
    """(how many sentences were judged, the unsupported ones): a judged sentence is
    unsupported when less than `threshold` of its content words occur in `sources_text`."""
    source_words = content_words(sources_text)
    judged, unsupported = 0, []
    for sentence in sentences(answer):
        words = content_words(sentence)
        if len(words) < MIN_CONTENT_WORDS:
            continue
        judged += 1
        if len(words & source_words) / len(words) < threshold:
            unsupported.append(sentence)
    return judged, unsupported


# --------------------------------------------------------------------------- citations, decline


def article_key(name: str) -> str:
    """ "returns-and-refunds.md", "Returns And Refunds" and "returns_and_refunds" are one key."""
    name = re.sub(r"\.(md|markdown|txt|html?|pdf|docx)$", "", name.strip().lower())
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-")


def citation_precision(cited_documents: Sequence[Sequence[str]], article: str) -> float | None:
    """Share of the cited documents (each given by the names it goes by: source name, title,
    file name) that are `article`; None when nothing is cited."""
    if not cited_documents:
        return None
    expected = article_key(article)
    hits = sum(1 for names in cited_documents if expected in {article_key(n) for n in names})
    return hits / len(cited_documents)


def is_declined(decision: str, outcome: str) -> bool:
    """Whether the engine declined (or handed off) instead of answering."""
    return decision in DECLINE_DECISIONS or outcome in DECLINE_OUTCOMES


# --------------------------------------------------------------------------- per answer


@dataclass
class AnswerRecord:
    """One question of the set answered by one strategy (plain data, no model instances)."""

    question: str
    strategy: str
    answerable: bool
    facts: Sequence[str] = ()
    article: str | None = None
    content: str = ""
    decision: str = ""
    outcome: str = ""
    # One entry per distinct cited document: the names it goes by (source name, title, ...).
    cited_documents: Sequence[Sequence[str]] = ()
    citations: int = 0  # citation entries, several for one document when it is cited twice
    sources_text: str = ""  # the cited sources' text
    first_token_ms: int | None = None
    total_ms: int | None = None
    error: str = ""
    # What the engine based its decision on (for calibrating the answerability threshold).
    answerability: float | None = None
    reason: str = ""
    signals: dict[str, float] = field(default_factory=dict)


@dataclass
class AnswerScore:
    record: AnswerRecord
    declined: bool
    facts_expected: int
    facts_matched: int
    missing_facts: list[str]
    invented: list[str]
    sentences_judged: int
    unsupported: list[str]
    citation_precision: float | None
    markup: list[str]
    duplicate_citations: bool
    failures: list[str] = field(default_factory=list)


def score_answer(record: AnswerRecord, *, allowed_numbers: set[str]) -> AnswerScore:
    """Check one answer; `allowed_numbers` are the tenant's (`knowledge_numbers`). Numbers of
    the question itself are allowed too: repeating the customer's "100 miles" invents nothing."""
    content = record.content or ""
    declined = not record.error and is_declined(record.decision, record.outcome)
    facts = list(record.facts) if record.answerable else []
    matched = fact_matches(content, facts) if not declined else [False] * len(facts)
    invented = invented_numbers(content, allowed_numbers | numbers_in(record.question))
    judged, unsupported = (0, [])
    if content and not declined and not record.error:
        judged, unsupported = unsupported_sentences(content, record.sources_text)
    precision = (
        citation_precision(record.cited_documents, record.article)
        if record.answerable and record.article
        else None
    )
    score = AnswerScore(
        record=record,
        declined=declined,
        facts_expected=len(facts),
        facts_matched=sum(matched),
        missing_facts=[f for f, ok in zip(facts, matched, strict=True) if not ok],
        invented=invented,
        sentences_judged=judged,
        unsupported=unsupported,
        citation_precision=precision,
        markup=markup_in(content),
        duplicate_citations=record.citations > len(record.cited_documents),
    )
    score.failures = _failures(score)
    return score


def _failures(score: AnswerScore) -> list[str]:
    record, why = score.record, []
    if record.error:
        why.append(f"error: {record.error}")
    elif record.answerable and score.declined:
        why.append("answerable question declined")
    elif not record.answerable and not score.declined:
        why.append("out-of-scope question answered")
    if score.missing_facts and not score.declined and not record.error:
        why.append("missing facts: " + ", ".join(score.missing_facts))
    if score.invented:
        why.append("invented numbers: " + ", ".join(score.invented))
    why.extend(f"unsupported sentence: {s[:120]!r}" for s in score.unsupported)
    if score.markup:
        why.append("markup: " + ", ".join(sorted(set(score.markup))))
    if score.citation_precision == 0:
        why.append(f"cites none of {record.article}")
    if score.duplicate_citations:
        why.append("cites a document more than once")
    return why


# --------------------------------------------------------------------------- aggregate


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def summarize(scores: Sequence[AnswerScore]) -> dict[str, Any]:
    """The metrics of one strategy over its scored answers (rates are None when undefined)."""
    answered = [s for s in scores if not s.record.error]
    answerable = [s for s in scores if s.record.answerable]
    out_of_scope = [s for s in scores if not s.record.answerable]
    declined = [s for s in answered if s.declined]
    cited = [s for s in answerable if s.record.article and s.record.cited_documents]
    cited_documents = sum(len(s.record.cited_documents) for s in cited)
    cited_expected = sum(
        (s.citation_precision or 0.0) * len(s.record.cited_documents) for s in cited
    )
    first_tokens = [
        s.record.first_token_ms for s in answered if s.record.first_token_ms is not None
    ]
    totals = [s.record.total_ms for s in answered if s.record.total_ms is not None]
    judged = sum(s.sentences_judged for s in scores)
    return {
        "questions": len(scores),
        "answerable": len(answerable),
        "out_of_scope": len(out_of_scope),
        "errors": len(scores) - len(answered),
        "fact_recall": _ratio(
            sum(s.facts_matched for s in answerable), sum(s.facts_expected for s in answerable)
        ),
        "questions_with_all_facts": sum(
            1 for s in answerable if s.facts_expected and not s.missing_facts and not s.declined
        ),
        "invented_number_rate": _ratio(sum(1 for s in answered if s.invented), len(answered)),
        "unsupported_sentence_rate": _ratio(sum(len(s.unsupported) for s in scores), judged),
        "sentences_judged": judged,
        "citation_precision": _ratio(cited_expected, cited_documents),
        "abstention_precision": _ratio(
            sum(1 for s in declined if not s.record.answerable), len(declined)
        ),
        "abstention_recall": _ratio(sum(1 for s in out_of_scope if s.declined), len(out_of_scope)),
        "wrongly_declined_rate": _ratio(sum(1 for s in answerable if s.declined), len(answerable)),
        "declined": len(declined),
        "answers_with_markup": sum(1 for s in scores if s.markup),
        "answers_citing_a_document_twice": sum(1 for s in scores if s.duplicate_citations),
        "ttft_p50_ms": percentile(first_tokens, 50),
        "ttft_p95_ms": percentile(first_tokens, 95),
        "ttft_measured": len(first_tokens),
        "total_p50_ms": percentile(totals, 50),
        "total_p95_ms": percentile(totals, 95),
        "outcomes": dict(Counter(s.record.outcome or "-" for s in answered).most_common()),
    }
