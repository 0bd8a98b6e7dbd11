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
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# A decline is a decision of "decline" or "handoff", or a grounding outcome that says so.
DECLINE_DECISIONS = frozenset({"decline", "handoff"})
DECLINE_OUTCOMES = frozenset({"declined", "chitchat", "handoff"})

# A sentence is unsupported when fewer than half of its content words occur in the cited
# sources ("mostly absent"). Sentences with fewer than MIN_CONTENT_WORDS content words
# ("Sure!", "Hope this helps.") are not judged: too short for a lexical check to mean anything.
SUPPORT_THRESHOLD = 0.5
MIN_CONTENT_WORDS = 3

# --------------------------------------------------------------------------- normalisation

_CITATION_MARKER = re.compile(r"\[\d{1,3}(?:\s*[,;\u2013-]\s*\d{1,3})*\]")
_LIST_NUMBERING = re.compile(r"(?m)^[ \t]*(?:[-*+][ \t]+)?\d{1,2}[.)][ \t]+")

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER_WORD = re.compile(
    r"\b(?:(?P<tens>" + "|".join(_TENS) + r")(?:[- ](?P<unit>" + "|".join(_UNITS[1:10]) + r"))?"
    r"|(?P<small>" + "|".join(_UNITS) + r"))\b",
    re.IGNORECASE,
)

# "+1 (503) 555-0142", "503-555-0142", "(503) 555 0142"; the last two groups need a separator
# so that a long plain number is not taken for a phone number.
_PHONE = re.compile(r"(?<![\d\w])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}(?!\d)")
_PHONE_LOCAL = re.compile(r"(?<![\d\w-])\d{3}-\d{4}(?![\d\w])")
_TIME_12H = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
_TIME_24H = re.compile(r"\b(\d{1,2}):(\d{2})\b")
# A number not glued to a preceding letter ("mp3", "v2" are names, not numbers).
_NUMBER = re.compile(r"(?<![A-Za-z\d.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")
# Amounts and percentages keep their kind: "$7" is not the 7 of "7 business days".
_VALUE = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
_AMOUNT_BEFORE = re.compile(r"[$€£]\s?" + _VALUE)
_AMOUNT_AFTER = re.compile(
    r"(?<![A-Za-z\d.,])" + _VALUE + r"\s?(?:usd|us dollars?|dollars?|bucks|eur|euros?)\b",
    re.IGNORECASE,
)
_PERCENT = re.compile(
    r"(?<![A-Za-z\d.,])" + _VALUE + r"\s?(?:%|percent\b|per cent\b)", re.IGNORECASE
)


def _number_word(match: re.Match[str]) -> str:
    if match.group("small"):
        return str(_UNITS.index(match.group("small").lower()))
    value = 20 + 10 * _TENS.index(match.group("tens").lower())
    if match.group("unit"):
        value += _UNITS.index(match.group("unit").lower())
    return str(value)


def words_to_digits(text: str) -> str:
    """Spelled-out numbers up to ninety-nine as digits: "two hours" → "2 hours"."""
    return _NUMBER_WORD.sub(_number_word, text)


def strip_markers(text: str) -> str:
    """Text without citation markers ([1], [2, 3]) and without list numbering ("1. ")."""
    return _LIST_NUMBERING.sub("", _CITATION_MARKER.sub(" ", text))


def _plain_number(integer: str, fraction: str | None) -> str:
    value = integer.replace(",", "").lstrip("0") or "0"
    fraction = (fraction or "").rstrip("0")
    return f"{value}.{fraction}" if fraction else value


def _clock(hour: int, minute: int) -> str:
    return f"{hour}:{minute:02d}"


def _numbers(text: str, *, knowledge: bool) -> set[str]:
    text = words_to_digits(strip_markers(text))
    found: set[str] = set()

    def phone(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        digits = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
        found.add(f"phone:{digits}")
        if knowledge:  # "555-0142" without the area code is the same number
            found.add(f"phone:{digits[-7:]}")
        return " "

    def local_phone(match: re.Match[str]) -> str:
        found.add("phone:" + match.group(0).replace("-", ""))
        return " "

    def time_12h(match: re.Match[str]) -> str:
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        if hour > 12:
            return match.group(0)
        hour = hour % 12 + (12 if match.group(3).lower() == "p" else 0)
        found.add(f"time:{_clock(hour, minute)}")
        return " "

    def time_24h(match: re.Match[str]) -> str:
        hour, minute = int(match.group(1)), int(match.group(2))
        found.add(f"time:{_clock(hour, minute)}")
        if knowledge:  # "open from 9 to 6" names the hours of "9:00 to 18:00"
            found.update({str(hour), str(hour % 12 or 12)})
        return " "

    def typed(kind: str) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            value = _plain_number(match.group(1), match.group(2))
            found.add(f"{kind}:{value}")
            if knowledge:  # an answer may state "$6.95" as "6.95"
                found.add(value)
            return " "

        return replace

    text = _PHONE.sub(phone, text)
    text = _PHONE_LOCAL.sub(local_phone, text)
    text = _TIME_12H.sub(time_12h, text)
    text = _TIME_24H.sub(time_24h, text)
    text = _AMOUNT_BEFORE.sub(typed("amount"), text)
    text = _AMOUNT_AFTER.sub(typed("amount"), text)
    text = _PERCENT.sub(typed("percent"), text)
    found.update(_plain_number(m.group(1), m.group(2)) for m in _NUMBER.finditer(text))
    return found


def numbers_in(text: str) -> set[str]:
    """The normalised numbers of `text`: "1000", "amount:6.95", "percent:30",
    "phone:5035550142", "time:18:00"."""
    return _numbers(text, knowledge=False)


def knowledge_numbers(text: str) -> set[str]:
    """The numbers an answer may state: those of `text`, plus the forms an answer may fairly
    shorten them to (a phone number without its area code, an hour of a "9:00" time)."""
    return _numbers(text, knowledge=True)


def invented_numbers(answer: str, allowed: set[str]) -> list[str]:
    """The numbers of `answer` that are not in `allowed` (see `knowledge_numbers`), sorted."""
    return sorted(numbers_in(answer) - allowed)


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

_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
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
        "can't",
        "cannot",
        "could",
        "couldn't",
        "did",
        "didn't",
        "do",
        "does",
        "doesn't",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "either",
        "else",
        "even",
        "ever",
        "every",
        "few",
        "for",
        "from",
        "further",
        "get",
        "gets",
        "getting",
        "got",
        "had",
        "hadn't",
        "has",
        "hasn't",
        "have",
        "haven't",
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
        "however",
        "i",
        "i'd",
        "i'll",
        "i'm",
        "i've",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "it's",
        "its",
        "itself",
        "just",
        "let",
        "let's",
        "like",
        "may",
        "me",
        "might",
        "more",
        "most",
        "much",
        "must",
        "mustn't",
        "my",
        "myself",
        "need",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "often",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "per",
        "please",
        "quite",
        "rather",
        "really",
        "same",
        "shall",
        "she",
        "should",
        "shouldn't",
        "so",
        "some",
        "such",
        "sure",
        "than",
        "that",
        "that's",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "there's",
        "these",
        "they",
        "they'd",
        "they'll",
        "they're",
        "they've",
        "this",
        "those",
        "through",
        "thus",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "very",
        "via",
        "was",
        "wasn't",
        "we",
        "we'd",
        "we'll",
        "we're",
        "we've",
        "were",
        "weren't",
        "what",
        "what's",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "within",
        "without",
        "won't",
        "would",
        "wouldn't",
        "yes",
        "yet",
        "you",
        "you'd",
        "you'll",
        "you're",
        "you've",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
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
