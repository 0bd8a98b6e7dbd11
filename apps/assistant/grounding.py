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
Nothing here knows Django: the embedding function is passed in.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import numpy as np

from apps.knowledge.embeddings import STOPWORDS

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
# A word means nearly the same as another at this word cosine or above ("bitcoin" ~
# "cryptocurrency" 0.71, "bought" ~ "purchased" 0.91; "kids" ~ "bikes" 0.33, "rent" ~
# "financing" 0.48): used for question words the knowledge lacks and answer words the facts lack.
SYNONYM_COSINE = 0.6

# --- Markup -----------------------------------------------------------------------------------

_SCRIPT_BLOCK = re.compile(r"<\s*(script|style|iframe|object)\b.*?(<\s*/\s*\1\s*>|$)", re.I | re.S)
_TAG = re.compile(r"</?\s*[a-zA-Z][a-zA-Z0-9:-]*(\s[^<>]*)?/?\s*>|<!--.*?-->", re.S)
_DANGLING_TAG = re.compile(r"</?\s*[a-zA-Z][a-zA-Z0-9:-]*(\s[^<>]*)?$")
_SPECIAL_TOKEN = re.compile(r"<\|[^|>]{1,40}\|>")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.M)
_CODE_FENCE = re.compile(r"^\s*```.*$", re.M)


def strip_markup(text: str) -> str:
    """`text` reduced to the widget's Markdown subset: no HTML tags (script and style blocks
    dropped with their content), no model control tokens, no images, no headings or fences."""
    text = _SPECIAL_TOKEN.sub("", text or "")
    text = _SCRIPT_BLOCK.sub("", text)
    text = _TAG.sub("", text)
    text = _DANGLING_TAG.sub("", text)
    text = html.unescape(text)
    # Unescaping may have produced tags again ("&lt;script&gt;"): strip once more.
    text = _SCRIPT_BLOCK.sub("", text)
    text = _TAG.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _HEADING.sub("", text)
    text = _CODE_FENCE.sub("", text)
    text = text.replace("<", "\u2039").replace(">", "\u203a")  # no half tag survives
    return re.sub(r"[ \t]+", " ", text).strip()


def has_markup(text: str) -> bool:
    return bool(_TAG.search(text or "") or _SPECIAL_TOKEN.search(text or ""))


# --- Sentences --------------------------------------------------------------------------------

_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "approx.", "vs.", "no.", "mr.", "mrs.", "dr.", "st.")
_CITATION = re.compile(r"\s*\[(\d{1,2}(?:\s*,\s*\d{1,2})*)\]")
_LIST_MARK = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
# A sentence ends at . ! ? (plus closing quotes, brackets, citation markers) before a space and
# an upper-case letter, a digit, a quote, a tag or a list mark (closing tags stay with the
# sentence they end), or at a line break.
_BOUNDARY = re.compile(
    r"(?<=[.!?])((?:\s*\[\d{1,2}(?:\s*,\s*\d{1,2})*\])*[\"')\]]*(?:\s*</[a-zA-Z][a-zA-Z0-9]*\s*>)*)"
    r"\s+(?=[A-Z0-9\"'*(¿¡<-])"
)


def split_sentences(text: str) -> list[str]:
    """Sentences and list items of `text`, in order, stripped; citation markers stay attached
    to the sentence they end."""
    sentences: list[str] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        start = 0
        for match in _BOUNDARY.finditer(line):
            end = match.end(1)
            candidate = line[start:end].strip()
            last_word = candidate.split()[-1].lower() if candidate.split() else ""
            if last_word in _ABBREVIATIONS or re.search(r"\b[A-Z]\.$", candidate):
                continue
            if candidate:
                sentences.append(candidate)
            start = match.end()
        rest = line[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


def complete_sentences(buffer: str) -> tuple[list[str], str]:
    """The finished sentences at the head of a streaming `buffer`, and what is left over.

    A sentence is finished once the text after it has begun (so a trailing citation marker
    still belongs to it) or a line has ended."""
    parts = split_sentences(buffer)
    if not parts:
        return [], buffer
    if buffer.endswith("\n"):
        return parts, ""
    *done, last = parts
    tail_start = buffer.rfind(last)
    return done, buffer[tail_start:] if tail_start >= 0 else last


def citation_numbers(sentence: str) -> list[int]:
    numbers: list[int] = []
    for group in _CITATION.findall(sentence):
        numbers.extend(int(n) for n in group.split(","))
    return numbers


def without_citations(sentence: str) -> str:
    return _CITATION.sub("", sentence).strip()


def without_list_mark(sentence: str) -> str:
    return _LIST_MARK.sub("", sentence)


# --- Words ------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?", re.UNICODE)


@functools.cache
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def stem(word: str) -> str:
    """The word's Snowball stem, lower-case ("refunds" -> "refund")."""
    return _stem(word.lower())


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text or "")]


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning (no stopwords, no one-letter words)."""
    return {
        _stem(w)
        for w in words(without_citations(text))
        if w not in STOPWORDS and (len(w) > 1 or w.isdigit())
    }


# Words that never decide what a question asks or a sentence claims ("what does", "I'd like",
# "still", "now").
_GENERIC_TEXT = """
    what whats does do did doing done get gets got getting like it its it's now about just been
    be being should would could can will shall may might must i'm i'd i've i'll don't doesn't
    didn't hasn't haven't havent isn't aren't won't can't cannot ok okay please hi hello hey
    thanks thank anything something anyone someone another other way thing things much many lot
    lots really also still already yet need want know tell help make use go going come take put
    give keep let say see look find try ago today tomorrow yesterday time day week month year
    hour minute last next first new old good bad big small too very roughly approximately around
    exactly usually typically generally simply cost costs
"""
GENERIC_WORDS = frozenset(_stem(w) for w in _GENERIC_TEXT.split())


def vocabulary_words(texts: Iterable[str]) -> list[str]:
    """The words of `texts` as written, once each, in order: no stopwords, no numbers, none
    shorter than 3 letters."""
    found = dict.fromkeys(
        w
        for text in texts
        for w in words(text)
        if w not in STOPWORDS and len(w) > 2 and not w.isdigit()
    )
    return list(found)


def without_synonyms(
    candidates: Sequence[str], vocabulary_vectors: np.ndarray, embed: Embed
) -> list[str]:
    """The `candidates` that no word of the vocabulary (its unit vectors) means nearly the same
    as (word cosine below SYNONYM_COSINE)."""
    if not candidates or not len(vocabulary_vectors):
        return list(candidates)
    similarity = np.asarray(embed(list(candidates))) @ np.asarray(vocabulary_vectors).T
    return [
        w
        for w, row in zip(candidates, similarity, strict=True)
        if float(row.max()) < SYNONYM_COSINE
    ]


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


# --- Facts ------------------------------------------------------------------------------------

_URL = re.compile(
    r"\b(?:https?://|www\.)[^\s<>()\[\]\"']+|"
    r"\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|example|co|de|fr|es|uk|us|eu|info|app|dev)"
    r"(?:/[^\s<>()\[\]\"']*)?",
    re.I,
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(
    r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,3}(?!\w|\.\d)"
)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\d)")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "single": 1, "twice": 2, "once": 1, "dozen": 12, "half": 0.5,
}  # fmt: skip
# In an answer, a number word is a claim only before a unit ("two hours", not "one of them").
_NUMBER_WORD_WITH_UNIT = re.compile(
    r"\b(" + "|".join(_NUMBER_WORDS) + r")(?:[\s-]+(?:full\s+|business\s+|working\s+|calendar\s+)?"
    r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|times?|percent|dollars?|euros?|"
    r"miles?|km|kilometers?|kilometres?|cycles?|keys?|items?|pounds?|kg|charges?))\b",
    re.I,
)


def _canonical_number(integer: str, fraction: str | None) -> str:
    try:
        value = Decimal(integer.replace(",", "") + ("." + fraction if fraction else ""))
    except InvalidOperation:
        return integer
    value = value.normalize()
    text = format(value, "f")
    return text


def _phone_digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _url_key(url: str) -> str:
    url = url.lower().rstrip(".,;:!?")
    url = re.sub(r"^https?://", "", url)
    url = re.sub(r"^www\.", "", url)
    return url.rstrip("/")


@dataclass
class Facts:
    """The checkable facts in a text, normalised."""

    numbers: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.numbers or self.phones or self.emails or self.urls)

    def update(self, other: Facts) -> None:
        self.numbers |= other.numbers
        self.phones |= other.phones
        self.emails |= other.emails
        self.urls |= other.urls


def extract_facts(text: str, *, all_number_words: bool = False) -> Facts:
    """Numbers (with amounts, percentages, times and number words before units), phone
    numbers, emails and URLs in `text`. Citation markers and list numbering are not facts.

    `all_number_words`: count every number word (for sources, so that an answer may say
    "2 keys" where a source says "two keys"), not only those before a unit."""
    facts = Facts()
    text = "\n".join(without_list_mark(line) for line in (text or "").splitlines())
    text = _CITATION.sub(" ", text)
    for match in _EMAIL.finditer(text):
        facts.emails.add(match.group(0).lower())
    text = _EMAIL.sub(" ", text)
    for match in _URL.finditer(text):
        facts.urls.add(_url_key(match.group(0)))
    text = _URL.sub(" ", text)
    for match in _PHONE.finditer(text):
        digits = _phone_digits(match.group(0))
        if len(digits) >= 7:
            facts.phones.add(digits)
            text = text.replace(match.group(0), " ", 1)
    for match in _TIME.finditer(text):
        facts.numbers.add(f"{int(match.group(1))}:{match.group(2)}")
    text = _TIME.sub(" ", text)
    for match in _NUMBER.finditer(text):
        facts.numbers.add(_canonical_number(match.group(1), match.group(2)))
    if all_number_words:
        for word in words(text):
            if word in _NUMBER_WORDS:
                facts.numbers.add(_canonical_number(str(_NUMBER_WORDS[word]), None))
    else:
        for match in _NUMBER_WORD_WITH_UNIT.finditer(text):
            facts.numbers.add(_canonical_number(str(_NUMBER_WORDS[match.group(1).lower()]), None))
    return facts


def unknown_facts(claimed: Facts, known: Facts) -> list[str]:
    """The facts in `claimed` that `known` does not hold, as readable strings."""
    missing = [n for n in sorted(claimed.numbers) if n not in known.numbers]
    for phone in sorted(claimed.phones):
        # A phone number may be written with or without its country code.
        if not any(
            phone.endswith(k[-7:]) and (k.endswith(phone) or phone.endswith(k))
            for k in known.phones
        ):
            missing.append(phone)
    missing += [e for e in sorted(claimed.emails) if e not in known.emails]
    for url in sorted(claimed.urls):
        if not any(
            url == k
            or k.startswith(url + "/")
            or url.startswith(k + "/")
            or url.startswith(k + "?")
            for k in known.urls
        ):
            missing.append(url)
    return missing


# --- The guard --------------------------------------------------------------------------------

Embed = Callable[[Sequence[str]], np.ndarray]


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


_NOT_CONTEXT = {_stem(w) for w in (*_UNIT_WORDS, *_NUMBER_WORDS)}


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
_VERDICT = re.compile(r"^\s*(?:(?:yes|no|yeah|yep|nope)\b|the\s+answer\s+is\s+(?:yes|no)\b)", re.I)
# Negation: a claim and its supporting fact must agree ("You can add items" is not supported by
# "We cannot add items").
_NEGATION = re.compile(
    r"\b(?:not|no|never|cannot|none|nothing|neither|nor|without)\b|n['\u2019]t\b", re.I
)
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
    ) -> None:
        self.embed = embed
        self.question = question
        self.known = Facts()
        for text in (*sources, question, *extra_known):
            self.known.update(extract_facts(text, all_number_words=True))
        self.sentences: list[SourceSentence] = []
        for index, text in enumerate(sources):
            for sentence in split_sentences(strip_markup(text)):
                plain = without_list_mark(without_citations(sentence))
                if len(plain) >= 3:
                    self.sentences.append(
                        SourceSentence(plain, index, content_words(plain), _clauses(plain))
                    )
        self.vocabulary: set[str] = content_words(question).union(
            *(s.words for s in self.sentences)
        )
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
        battery warranty lasts 2 years" where 2 years is the frame's), or ""."""
        question_numbers = extract_facts(self.question, all_number_words=True).numbers
        context = _context_words(plain)
        if not context:
            return ""
        needed = min(2, len(context), max(1, round(FACT_CONTEXT_SHARE * len(context))))
        needed = max(needed, 1)
        for number in sorted(numbers - question_numbers):
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
                vectors = np.asarray(self.embed([plain, *holding]))
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
                if _stem(w) in unknown
                and w not in _NUMBER_WORDS
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
        misplaced = self._misplaced_numbers(plain, claimed.numbers)
        if misplaced:
            return Verdict(False, "invented_fact", "said of something else: " + misplaced)
        if _REFUSAL.search(plain):
            return Verdict(False, "refusal", plain[:80])
        if placeholder := _PLACEHOLDER.search(plain):
            return Verdict(False, "invented_fact", "a placeholder: " + placeholder[0])
        if _VERDICT.search(plain):
            return Verdict(False, "unsupported", "a yes/no verdict no fact states")
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
            if bool(_NEGATION.search(plain)) != bool(_NEGATION.search(fact)):
                return Verdict(
                    False,
                    "contradiction",
                    f"negation differs from the fact: {fact[:80]}",
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
