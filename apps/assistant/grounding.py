"""The groundedness guard: deterministic, CPU-cheap checks that an answer says only what its
sources say.

An answer is checked sentence by sentence as it streams. A sentence passes when

- every number, amount, duration, date, phone number, email address and URL in it occurs in the
  sources (or in the customer's own question), after normalisation: "$6.95" = "6.95 USD",
  "two hours" = "2 hours", "+1 (503) 555-0142" = "503-555-0142";
- it is supported by one source sentence: embedding similarity, or enough of its content words
  found in that sentence (thresholds below, calibrated with `manage.py evaluate_answers` on the
  demo set; see docs/chat.md);
- it does not repeat an earlier sentence, or loop on the same words.

Markup is stripped to the widget's Markdown subset before anything is checked or shown.
Nothing here knows Django: the embedding function is passed in. The text, the words and the
facts it compares are read by `answer_text`, `lexicon` and `facts`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from apps.assistant.answer_text import (
    has_markup,
    split_sentences,
    strip_markup,
    without_citations,
    without_list_mark,
)
from apps.assistant.facts import (
    NUMBER_WORDS,
    Facts,
    Ranges,
    duration_units,
    extract_facts,
    number_ranges,
    unknown_facts,
)
from apps.assistant.lexicon import (
    GENERIC_WORDS,
    Embed,
    content_words,
    jaccard,
    stem,
    vocabulary_words,
    without_synonyms,
    words,
)

# --- Thresholds (calibrated on apps/tenants/demo/answers.jsonl; docs/chat.md) ------------------

# A sentence is supported when its best source sentence is at least this similar (cosine of
# MiniLM embeddings) ...
SUPPORT_COSINE = 0.62
# ... or holds at least this share of its content words (stemmed) ...
SUPPORT_LEXICAL = 0.7
# ... or this share when its numbers sit in the right context in a source ...
SUPPORT_LEXICAL_WITH_FACT = 0.5
# ... or both are fairly high together.
SUPPORT_COSINE_WITH_LEXICAL = (0.5, 0.5)
# Sentences with fewer content words than this carry no claim ("Sure!", "Hope this helps.").
MIN_CLAIM_WORDS = 3
# A sentence this close (token Jaccard) to an earlier one is a repetition.
REPEAT_JACCARD = 0.8
# A word trigram seen this often in one answer is a loop.
LOOP_TRIGRAM_COUNT = 3
# A "sentence" longer than this many words is a run-on the model will not end.
MAX_SENTENCE_WORDS = 70
# A claim may use at most this many content words that neither the facts nor the question use
# ("website", "app", "located at [address]" are how a small model invents).
MAX_NOVEL_WORDS = 2

# --- The guard --------------------------------------------------------------------------------


@dataclass
class SourceSentence:
    text: str
    source: int  # the index of the source it comes from
    words: set[str]
    # (numbers, context words, text) of each clause
    clauses: list[tuple[set[str], set[str], str]] = field(default_factory=list)


# Words that say what kind of number it is, not what it is about ("2 years" of what?).
_UNIT_WORDS_TEXT = """
second seconds minute minutes hour hours day days week weeks month months year years time times
percent dollar dollars euro euros mile miles km cycle cycles business working full about
approximately around up within least most only
"""
_UNIT_WORDS = set(_UNIT_WORDS_TEXT.split())
_CLAUSE = re.compile(r";|,\s+(?:and|but|or|while|whereas)\s+|,\s+")
# An answer's number must sit among at least this share of the answer sentence's other words
# in the source clause that holds it (or the clause before), or at least two of them.
FACT_CONTEXT_SHARE = 0.5


def _context_words(text: str) -> set[str]:
    return {w for w in content_words(text) if not any(c.isdigit() for c in w)} - _NOT_CONTEXT


_NOT_CONTEXT = {stem(w) for w in (*_UNIT_WORDS, *NUMBER_WORDS)}


def _clauses(sentence: str) -> list[tuple[set[str], set[str], str]]:
    """(numbers, context words, text) of each clause, including the clause before."""
    parts = [p for p in _CLAUSE.split(sentence) if p and p.strip()]
    result = []
    for i, part in enumerate(parts):
        numbers = extract_facts(part, all_number_words=True).numbers
        text = f"{parts[i - 1]}, {part}" if i else part
        result.append((numbers, _context_words(text), text))
    return result


# A paraphrase that shares few words with the clause holding its number still passes when its
# embedding is this close to that clause.
FACT_CONTEXT_COSINE = 0.65


@dataclass
class Verdict:
    ok: bool
    reason: str = ""  # invented_fact, unsupported, contradiction, repetition, markup, refusal
    detail: str = ""
    source: int | None = None  # the best supporting source
    cosine: float = 0.0
    lexical: float = 0.0
    claim: bool = True  # False for a sentence that claims nothing ("Sure!")


# A bare verdict ("Yes, ...", "No, ...", "The answer is yes") is the model's own conclusion, which
# no fact states; small models get it backwards ("Yes, you can pay with bitcoin").
# A template placeholder ("located at [address]", "[insert link]") is never a fact.
_PLACEHOLDER = re.compile(r"\[(?!\s*\d)[^\]]{1,40}\]|\{\{?\s*\w+\s*\}\}?")
_VERDICT = re.compile(
    r"^\s*(?:(?:yes|no|yeah|yep|nope)\b|"
    r"the\s+(?:short\s+)?answer(?:\s+to\s+your\s+question)?\s+is\W{0,3}\s*(?:yes|no)\b)",
    re.I,
)
# Negation: a claim and its supporting fact must agree ("You can add items" is not supported by
# "We cannot add items"; "The service centers are open on Mondays" by "They are closed on
# Sundays, Mondays and US public holidays").
_NEGATION = re.compile(
    r"\b(?:not|no|never|cannot|none|nothing|neither|nor|without|closed|unavailable|excluded|"
    r"prohibited|forbidden)\b|n['\u2019]t\b|\bnon-",
    re.I,
)
# A condition or exception attached to a claim ("..., but only if you have a prepaid label") must
# come from the fact that supports the claim (or be the customer's own): a small model adds
# plausible conditions to true statements. A condition ends at the next comma or semicolon.
_CONDITION = re.compile(
    r"\b(?:only\s+if|if|unless|as\s+long\s+as|provided(?:\s+that)?|except(?:\s+for)?|"
    r"only\s+when|on\s+condition\s+that)\b",
    re.I,
)
_CONDITION_END = re.compile(r"[;,]|\.\s")
CONDITION_SUPPORT = 0.5
# A day the answer names must be named by the fact that supports it ("Northwind Bikes is open on
# Mondays" was supported by a sentence about something else; the facts say closed on Mondays).
_DAY = re.compile(
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend|holiday)s?\b", re.I
)


def _days(text: str) -> set[str]:
    return {day.lower() for day in _DAY.findall(text)}


# A quoted name ("Privacy & Deletion", the button a small model invents) must be in the facts.
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201c\u201d\n]{1,60})[\"\u201d]")
# A clause may bring in at most this many content words that neither its best fact sentence nor
# the question has: a small model splices a phrase of another fact into a true one ("by emailing
# photos to the carrier's local depot", where the photos go to support and the depot holds
# bikes nobody was home for).
MAX_SPLICED_WORDS = 2
_REFUSAL = re.compile(
    r"\b(?:i\s+(?:do\s+not|don't|cannot|can't|am\s+not\s+able\s+to)\s+(?:know|find|answer|help|"
    r"say|tell|see|provide)|(?:is|are)\s+not\s+(?:mentioned|provided|given|in\s+the\s+sources)|"
    r"no\s+information|sources?\s+(?:do|does)\s*(?:not|n't)\s+(?:say|mention|contain)|"
    r"not\s+sure|as\s+an\s+ai)\b",
    re.I,
)


class Guard:
    """Checks the sentences of one answer against its sources, in order."""

    def __init__(
        self,
        *,
        sources: Sequence[str],
        question: str = "",
        embed: Embed | None = None,
        extra_known: Iterable[str] = (),
        focus: Sequence[str] | None = None,
    ) -> None:
        self.embed = embed
        self.question = question
        # The facts a sentence may state: those of `focus` (the evidence that answers the
        # question, which the extractive answer would quote) and of the question; None: any
        # source's. A small model otherwise answers with a neighbouring fact's number ("You can
        # return your e-bike within 2 business days", the inspection's time, not the return's).
        question_facts = extract_facts(question, all_number_words=True)
        self.question_numbers = question_facts.numbers
        self.focus: Facts | None = None
        if focus is not None:
            self.focus = Facts()
            self.focus.update(question_facts)
            for text in focus:
                self.focus.update(extract_facts(text, all_number_words=True))
        self.known = Facts()
        self.durations: dict[str, set[str]] = {}
        self.ranges = Ranges()
        for text in (*sources, question, *extra_known):
            self.known.update(extract_facts(text, all_number_words=True))
            for number, units in duration_units(text).items():
                self.durations.setdefault(number, set()).update(units)
            self.ranges.update(number_ranges(text))
        self.question_words = content_words(question)
        # Quoted labels ("click "Delete Account"") are looked up in this text.
        self.source_text = " ".join(
            " ".join(strip_markup(text).replace("*", "").casefold().split())
            for text in (*sources, question, *extra_known)
        )
        self.sentences: list[SourceSentence] = []
        for index, text in enumerate(sources):
            for sentence in split_sentences(strip_markup(text)):
                plain = without_list_mark(without_citations(sentence))
                if len(plain) >= 3:
                    self.sentences.append(
                        SourceSentence(plain, index, content_words(plain), _clauses(plain))
                    )
        self.vocabulary: set[str] = self.question_words.union(*(s.words for s in self.sentences))
        self._vectors: np.ndarray | None = None
        self._vocabulary_vectors: np.ndarray | None = None
        self.accepted: list[set[str]] = []
        self.trigrams: dict[tuple[str, ...], int] = {}

    def _source_vectors(self) -> np.ndarray | None:
        if self.embed is None or not self.sentences:
            return None
        if self._vectors is None:
            self._vectors = np.asarray(self.embed([s.text for s in self.sentences]))
        return self._vectors

    def _misplaced_numbers(self, plain: str, numbers: set[str]) -> str:
        """A number of the answer that the sources only state about something else ("the
        battery warranty lasts 2 years" where 2 years is the frame's), or "". Each clause's
        numbers are judged by that clause's words (the sentence's when it has none of its own),
        so "the battery is covered for 2 years, and the frame for 1 year" does not pass on
        the strength of the other clause."""
        unjudged = numbers - self.question_numbers
        whole = _context_words(plain)
        for clause in _CLAUSE.split(plain):
            stated = extract_facts(clause).numbers & unjudged
            unjudged -= stated
            if misplaced := self._misplaced_in(clause, stated, _context_words(clause) or whole):
                return misplaced
        return self._misplaced_in(plain, unjudged, whole)

    def _misplaced_in(self, text: str, numbers: set[str], context: set[str]) -> str:
        """The first of `numbers` (stated in `text`, about `context`) that no source clause
        states among enough of those words, nor in a clause close to `text`, or ""."""
        if not context:
            return ""
        needed = min(2, len(context), max(1, round(FACT_CONTEXT_SHARE * len(context))))
        needed = max(needed, 1)
        for number in sorted(numbers):
            best = 0
            holding = []
            for source in self.sentences:
                for clause_numbers, clause_words, clause_text in source.clauses:
                    if number in clause_numbers:
                        best = max(best, len(context & clause_words))
                        holding.append(clause_text)
            if best >= needed or best / len(context) >= FACT_CONTEXT_SHARE:
                continue
            if self.embed is not None and holding:
                vectors = np.asarray(self.embed([text, *holding]))
                if float(np.max(vectors[1:] @ vectors[0])) >= FACT_CONTEXT_COSINE:
                    continue
            return number
        return ""

    def _novel_words(self, plain: str, own: set[str]) -> list[str]:
        """The sentence's content words that no fact and not the question uses, nor a close
        synonym of one of their words (`without_synonyms`)."""
        unknown = own - self.vocabulary - GENERIC_WORDS - _UNIT_WORDS
        surfaces = sorted(
            {
                w
                for w in words(plain)
                if stem(w) in unknown
                and w not in NUMBER_WORDS
                and not any(ch.isdigit() for ch in w)
                and len(w) > 1
            }
        )
        if len(surfaces) <= MAX_NOVEL_WORDS or self.embed is None:
            return surfaces
        if self._vocabulary_vectors is None:
            texts = (self.question, *(s.text for s in self.sentences))
            known = sorted(vocabulary_words(texts))[:400]
            self._vocabulary_vectors = np.asarray(self.embed(known)) if known else np.zeros((0, 0))
        return without_synonyms(surfaces, self._vocabulary_vectors, self.embed)

    def _unsupported_condition(self, plain: str, source: int | None) -> str:
        """The first condition of `plain` ("only if you have a prepaid label") whose words no
        sentence of its supporting source holds (CONDITION_SUPPORT of them, the question's
        words counting too), or ""."""
        for match in _CONDITION.finditer(plain):
            clause = _CONDITION_END.split(plain[match.end() :], maxsplit=1)[0]
            wanted = _context_words(clause) - GENERIC_WORDS
            if not wanted:
                continue
            held = max(
                (
                    len(wanted & (s.words | self.question_words))
                    for s in self.sentences
                    if s.source == source
                ),
                default=0,
            )
            if held < CONDITION_SUPPORT * len(wanted):
                return f"{match.group(0)}{clause}".strip()
        return ""

    def _spliced_words(self, plain: str) -> list[str]:
        """The words of the first clause of `plain` that holds more than MAX_SPLICED_WORDS
        content words its best fact sentence and the question lack, or []."""
        for clause in _CLAUSE.split(plain):
            wanted = _context_words(clause) - GENERIC_WORDS - self.question_words
            if len(wanted) <= MAX_SPLICED_WORDS:
                continue
            held = max((wanted & s.words for s in self.sentences), key=len, default=set())
            spliced = wanted - held
            if len(spliced) > MAX_SPLICED_WORDS:
                return sorted(spliced)
        return []

    def _echoes_question(self, plain: str, own: set[str]) -> bool:
        """Whether `plain` only says what the question said, with the same polarity (an answer
        to "Do I need to register?" may be "You don't need to register")."""
        new = own - self.question_words - GENERIC_WORDS - _NOT_CONTEXT
        if any(not _NEGATION.fullmatch(word) for word in new):
            return False
        return bool(_NEGATION.search(plain)) == bool(_NEGATION.search(self.question))

    def check(self, sentence: str) -> Verdict:
        """The verdict on the next sentence of the answer (already stripped of markup)."""
        plain = without_list_mark(without_citations(sentence)).strip()
        tokens = words(plain)
        if has_markup(sentence):
            return Verdict(False, "markup", sentence[:80])
        if len(tokens) > MAX_SENTENCE_WORDS:
            return Verdict(False, "repetition", "run-on sentence")
        for i in range(len(tokens) - 2):
            gram = tuple(tokens[i : i + 3])
            self.trigrams[gram] = self.trigrams.get(gram, 0) + 1
            if self.trigrams[gram] >= LOOP_TRIGRAM_COUNT:
                return Verdict(False, "repetition", " ".join(gram))
        own = content_words(plain)
        if any(jaccard(own, earlier) >= REPEAT_JACCARD for earlier in self.accepted):
            return Verdict(False, "repetition", "repeats an earlier sentence")
        claimed = extract_facts(plain)
        missing = unknown_facts(claimed, self.known)
        if missing:
            return Verdict(False, "invented_fact", ", ".join(missing[:5]))
        if self.focus is not None and (elsewhere := unknown_facts(claimed, self.focus)):
            return Verdict(
                False, "invented_fact", "a fact of other evidence: " + ", ".join(elsewhere[:5])
            )
        misplaced = self._misplaced_numbers(plain, claimed.numbers)
        if misplaced:
            return Verdict(False, "invented_fact", "said of something else: " + misplaced)
        for number, units in duration_units(plain).items():
            stated = self.durations.get(number)
            if stated and not units & stated:
                said, fact = sorted(units)[0], sorted(stated)[0]
                return Verdict(
                    False,
                    "invented_fact",
                    f"{number} {said}s where the facts say {number} {fact}s",
                )
        cut = self.ranges.cut(claimed.numbers, extract_facts(plain, all_number_words=True).numbers)
        if cut:
            return Verdict(False, "invented_fact", f"one end of {cut[0]} to {cut[1]}")
        if _REFUSAL.search(plain):
            return Verdict(False, "refusal", plain[:80])
        if placeholder := _PLACEHOLDER.search(plain):
            return Verdict(False, "invented_fact", "a placeholder: " + placeholder[0])
        if _VERDICT.search(plain):
            return Verdict(False, "unsupported", "a yes/no verdict no fact states")
        if own and self._echoes_question(plain, own):
            # "Your bike box arrived damaged." answers nothing: the customer said it.
            return Verdict(False, "unsupported", "repeats the customer's question")
        for label in _QUOTED.findall(plain):
            if " ".join(label.casefold().split()) not in self.source_text:
                return Verdict(False, "invented_fact", f'a label no fact has: "{label}"')
        if len(own) < MIN_CLAIM_WORDS:
            self.accepted.append(own)
            return Verdict(True, claim=False)
        novel = self._novel_words(plain, own)
        if len(novel) > MAX_NOVEL_WORDS:
            return Verdict(False, "unsupported", "words no fact uses: " + ", ".join(novel[:5]))
        best_lexical, best_index = 0.0, None
        for i, source in enumerate(self.sentences):
            overlap = len(own & source.words) / len(own)
            if overlap > best_lexical:
                best_lexical, best_index = overlap, i
        best_cosine, cosine_index = 0.0, None
        vectors = self._source_vectors()
        if vectors is not None and len(vectors):
            vector = np.asarray(self.embed([plain]))[0]
            similarities = vectors @ vector
            cosine_index = int(np.argmax(similarities))
            best_cosine = float(similarities[cosine_index])
        index = cosine_index if best_cosine >= SUPPORT_COSINE else best_index
        if index is None:
            index = cosine_index
        min_cos, min_lex = SUPPORT_COSINE_WITH_LEXICAL
        # A number already found in the right context anchors the sentence: fewer words needed.
        lexical_needed = SUPPORT_LEXICAL_WITH_FACT if claimed.numbers else SUPPORT_LEXICAL
        supported = (
            best_cosine >= SUPPORT_COSINE
            or best_lexical >= lexical_needed
            or (best_cosine >= min_cos and best_lexical >= min_lex)
        )
        source = self.sentences[index].source if index is not None else None
        if supported and index is not None:
            fact = self.sentences[index].text
            objection: tuple[str, str] | None = None
            if bool(_NEGATION.search(plain)) != bool(_NEGATION.search(fact)):
                objection = ("contradiction", f"negation differs from the fact: {fact[:80]}")
            elif condition := self._unsupported_condition(plain, source):
                objection = (
                    "unsupported",
                    f"a condition its fact does not state: {condition[:80]}",
                )
            elif spliced := self._spliced_words(plain):
                objection = ("unsupported", "words from another fact: " + ", ".join(spliced[:5]))
            elif days := _days(plain) - _days(fact):
                objection = (
                    "unsupported",
                    "a day its fact does not name: " + ", ".join(sorted(days)),
                )
            if objection:
                return Verdict(
                    False,
                    *objection,
                    source=source,
                    cosine=round(best_cosine, 3),
                    lexical=round(best_lexical, 3),
                )
        verdict = Verdict(
            supported,
            "" if supported else "unsupported",
            "" if supported else f"cosine {best_cosine:.2f}, words {best_lexical:.2f}",
            source=source,
            cosine=round(best_cosine, 3),
            lexical=round(best_lexical, 3),
        )
        if supported:
            self.accepted.append(own)
        return verdict
