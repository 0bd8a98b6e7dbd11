"""Evidence: the sentences, list items and table rows of the retrieved chunks that answer the
question, scored with the embedder already loaded plus keyword overlap.

The same evidence feeds all three strategies: the extractive answer is made of its best units,
the model's prompt holds only its top units (a prompt budget, not six whole chunks), and the
answerability score starts from how well the best unit matches the question.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np

from apps.assistant import answer_text, lexicon
from apps.knowledge.embeddings import STOPWORDS

# Score = cosine(question, unit) + KEYWORD_WEIGHT * share of the question's content words in
# the unit (its title and headings count half) + HEADING_WEIGHT * how well its heading matches
# the question (above HEADING_FLOOR) + ANSWER_TYPE_WEIGHT when it holds the kind of fact the
# question asks for (a duration for "how long", an amount for "how much", a phone number for
# "phone") + RANK_WEIGHT / retrieval rank.
KEYWORD_WEIGHT = 0.35
HEADING_WEIGHT = 0.5
HEADING_FLOOR = 0.35
ANSWER_TYPE_WEIGHT = 0.35
RANK_WEIGHT = 0.04
# Units of this many of the best chunks are considered, and this many of them, picked by
# keywords, answer type and retrieval rank, are embedded (a new unit costs an embedding: about
# 10 ms each on 2 CPU cores; vectors are remembered per process).
SCORED_CHUNKS = 4
EMBEDDED_UNITS = 16
# Words of a unit that are embedded (lists and long sentences are cut; the start says most).
EMBED_WORDS = 40
# Units within this much of the best one may join it in an extractive answer.
EXTRACTIVE_MARGIN = 0.12
EXTRACTIVE_MAX_UNITS = 3
EXTRACTIVE_MAX_CHARS = 600
# The sentence right after the best one often completes it ("...free of charge up to 24 hours
# before. After that, a $25 fee applies."): it joins within this wider margin.
FOLLOW_UP_MARGIN = 0.4
# A whole list is one unit too (so "how do I start a return" gets the steps), when short.
LIST_MAX_ITEMS = 8
LIST_MAX_CHARS = 700
# A curated answer (an agent's correction) this similar to the question is the answer.
CURATED_MIN_SCORE = 0.8
# A question word the retrieved knowledge never uses (nor a typo of one) is "missing" unless a
# word of the best SYNONYM_CHUNKS chunks means nearly the same (lexicon.without_synonyms).
# Hybrid retrieval brings up any chunk that uses a rare word, so a word absent from all
# retrieved chunks is, in practice, absent from the knowledge.
SYNONYM_CHUNKS = 3
SYNONYM_MAX_WORDS = 240
TYPO_SIMILARITY = 0.8


@dataclass
class Unit:
    """One answer-sized piece of a chunk."""

    text: str  # Markdown-subset text as it may be shown
    plain: str  # without Markdown, for scoring and prompts
    chunk: int  # index into the retrieved chunks
    kind: str  # sentence, item, list, row, curated
    position: int  # order within its chunk
    heading: str = ""
    score: float = 0.0
    cosine: float = 0.0
    keywords: float = 0.0


@dataclass
class Evidence:
    question: str
    chunks: list[Any]
    units: list[Unit] = field(default_factory=list)  # best first
    question_words: set[str] = field(default_factory=set)
    coverage: float = 0.0  # share of the question's content words found in the top chunks
    # Question words the retrieved knowledge never uses, nor a synonym or typo of them.
    missing: list[str] = field(default_factory=list)
    # For "how much"/"cost" questions: whether the best unit holds an amount (None: not asked).
    wanted_type_found: bool | None = None

    @property
    def best(self) -> Unit | None:
        return self.units[0] if self.units else None


# --- Splitting chunks into units ------------------------------------------------------------------

_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+(.*)$")
_TABLE_ROW = re.compile(r"^\s*\|(.+)\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")
_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)[^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")


def plain_text(text: str) -> str:
    text = _MD_LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    return " ".join(text.split())


_META = re.compile(
    r"^(?:this|the\s+following)\s+(?:article|page|guide|section|document|faq)\s+"
    r"(?:explains|describes|covers|tells|shows|answers|lists|is\s+about)\b",
    re.I,
)

_DURATION = re.compile(
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fourteen|thirty)\s*"
    r"(?:-\s*)?(?:full\s+|business\s+|working\s+)?(?:minutes?|hours?|days?|weeks?|months?|years?)\b",
    re.I,
)
_AMOUNT = re.compile(r"[$€£]\s?\d|\b\d+(?:\.\d+)?\s?(?:usd|eur|dollars?|euros?)\b|\bfree\b", re.I)
_PHONE_NUMBER = re.compile(r"\+?\(?\d{2,4}\)?[\s.-]\d{3}[\s.-]\d{3,4}")
_EMAIL_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
# A question that asks for an amount: "how much", "what does it cost", "is there a fee", "what is
# the price" (not "the price dropped", "can I pay with", "charge the battery").
_AMOUNT_ASKED = re.compile(
    r"\bhow\s+much\b|\bcosts?\b|\bfees?\b|\bwhat(?:'s|\s+is|\s+are)\s+the\s+(?:price|charge)s?\b",
    re.I,
)
_ANSWER_TYPES = [
    (
        re.compile(r"\bhow\s+(?:long|many\s+(?:days|weeks|months|years|hours))|\bwhen\b", re.I),
        _DURATION,
    ),
    (_AMOUNT_ASKED, _AMOUNT),
    (re.compile(r"\b(?:phone|call|telephone|hotline|number\s+to\s+call)\b", re.I), _PHONE_NUMBER),
    (re.compile(r"\be-?mail\b", re.I), _EMAIL_ADDRESS),
]


_QUESTION_FORM = re.compile(r"\bhow\s+(?:long|much|many|soon|often|quickly|fast)\b", re.I)


def question_words(question: str) -> set[str]:
    """The question's content words, without the words of its form ("how long")."""
    return lexicon.content_words(_QUESTION_FORM.sub(" ", question or ""))


def answer_types(question: str) -> list[re.Pattern[str]]:
    """Patterns of the facts the question asks for."""
    return [fact for asks, fact in _ANSWER_TYPES if asks.search(question or "")]


def _is_curated(chunk: Any) -> bool:
    return str(getattr(chunk, "chunk_id", "")).startswith("curated:")


def units_of(chunk: Any, index: int) -> list[Unit]:
    """Sentences, list items (and the whole list), and table rows of one chunk."""
    text = answer_text.strip_markup(chunk.text or "")
    if _is_curated(chunk):
        answer = text.split("\nAnswer:", 1)[-1].split("\n(From:", 1)[0].strip()
        return [Unit(answer, plain_text(answer), index, "curated", 0)]
    units: list[Unit] = []
    heading = " > ".join(getattr(chunk, "heading_path", None) or [])
    items: list[str] = []
    lead = ""
    header: list[str] = []

    def flush_list() -> None:
        nonlocal items, lead
        if 1 < len(items) <= LIST_MAX_ITEMS:
            body = "\n".join(f"- {item}" for item in items)
            whole = f"{lead}\n{body}" if lead else body
            if len(whole) <= LIST_MAX_CHARS:
                units.append(Unit(whole, plain_text(whole), index, "list", len(units), heading))
        items, lead = [], ""

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if match := _HEADING.match(line):
            flush_list()
            heading = match.group(1).strip()
            continue
        if _TABLE_RULE.match(line) and "|" in line:
            continue
        if match := _TABLE_ROW.match(line):
            cells = [c.strip() for c in match.group(1).split("|")]
            if not header:
                header = cells
                continue
            pairs = [f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=False) if c]
            row = "; ".join(pairs)
            units.append(Unit(row, plain_text(row), index, "row", len(units), heading))
            continue
        header = []
        if match := _LIST_ITEM.match(line):
            item = match.group(1).strip()
            items.append(item)
            units.append(Unit(item, plain_text(item), index, "item", len(units), heading))
            continue
        flush_list()
        sentences = answer_text.split_sentences(line)
        for sentence in sentences:
            units.append(
                Unit(sentence, plain_text(sentence), index, "sentence", len(units), heading)
            )
        # A sentence ending in ":" introduces the list that follows.
        if sentences and sentences[-1].rstrip().endswith(":"):
            lead = sentences[-1]
    flush_list()
    return [u for u in units if len(u.plain) >= 3 and not _META.match(u.plain)]


# --- Embedding units, remembered per chunk --------------------------------------------------------

_CACHE_SIZE = 4096
_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def embed_texts(texts: Sequence[str], encode: Any) -> np.ndarray:
    """Unit vectors for `texts`, remembering recent ones (the same chunks come back often)."""
    keys = [_key(t) for t in texts]
    vectors: list[np.ndarray | None] = []
    with _cache_lock:
        for k in keys:
            vector = _cache.get(k)
            if vector is not None:
                _cache.move_to_end(k)
            vectors.append(vector)
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing:
        fresh = np.asarray(encode([texts[i] for i in missing]))
        with _cache_lock:
            for i, vector in zip(missing, fresh, strict=True):
                vectors[i] = vector
                _cache[keys[i]] = vector
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    if not vectors:
        return np.zeros((0, 0), dtype=np.float32)
    return np.vstack(vectors)


# --- Scoring ------------------------------------------------------------------------------------


def gather(
    *, question: str, chunks: Sequence[Any], query_vector: np.ndarray, encode: Any
) -> Evidence:
    """Every unit of `chunks`, scored against `question`, best first."""
    evidence = Evidence(question=question, chunks=list(chunks))
    evidence.question_words = question_words(question)
    units = [u for i, chunk in enumerate(chunks[:SCORED_CHUNKS]) for u in units_of(chunk, i)]
    if not units:
        return evidence
    wanted = answer_types(question)
    q_words = evidence.question_words
    title_words = [
        lexicon.content_words(
            f"{getattr(c, 'title', '')} {' '.join(getattr(c, 'heading_path', None) or [])}"
        )
        for c in chunks
    ]
    for unit in units:
        own = lexicon.content_words(unit.plain)
        if q_words:
            context = title_words[unit.chunk] | lexicon.content_words(unit.heading)
            found = len(q_words & own) + 0.5 * len((q_words - own) & context)
            unit.keywords = found / len(q_words)
    # Only the likeliest units are embedded: keywords, answer type and retrieval rank decide.
    units.sort(
        key=lambda u: (
            u.keywords
            + (0.5 if wanted and any(p.search(u.plain) for p in wanted) else 0.0)
            + 0.3 / (u.chunk + 1)
            + (1.0 if u.kind == "curated" else 0.0)
        ),
        reverse=True,
    )
    # The likeliest units, and the sentence right after each of the top three (it may complete
    # one: see FOLLOW_UP_MARGIN).
    following = {(u.chunk, u.position): u for u in units if u.kind == "sentence"}
    head = units[:EMBEDDED_UNITS]
    for unit in head[:3]:
        nxt = following.get((unit.chunk, unit.position + 1))
        if unit.kind == "sentence" and nxt is not None and nxt not in head:
            head.append(nxt)
    units = head
    headings = sorted({u.heading.split(" > ")[-1] for u in units if u.heading})
    texts = [" ".join(u.plain.split()[:EMBED_WORDS]) for u in units]
    vectors = embed_texts([*texts, *headings], encode)
    query = np.asarray(query_vector)
    cosines = vectors[: len(units)] @ query
    heading_cosine = dict(zip(headings, (vectors[len(units) :] @ query).tolist(), strict=True))
    for unit, cosine in zip(units, cosines, strict=True):
        unit.cosine = float(cosine)
        rank = getattr(chunks[unit.chunk], "rank", unit.chunk + 1) or unit.chunk + 1
        heading = heading_cosine.get(unit.heading.split(" > ")[-1], 0.0)
        unit.score = (
            unit.cosine
            + KEYWORD_WEIGHT * unit.keywords
            + HEADING_WEIGHT * max(0.0, heading - HEADING_FLOOR)
            + RANK_WEIGHT / rank
        )
        if wanted and any(p.search(unit.plain) for p in wanted):
            unit.score += ANSWER_TYPE_WEIGHT
        if unit.kind == "curated":
            unit.score += 0.1
    units.sort(key=lambda u: u.score, reverse=True)
    evidence.units = units
    chunk_words = [lexicon.content_words(_chunk_text(c)) for c in chunks]
    if q_words:
        top = set().union(*chunk_words[:3])
        evidence.coverage = len(q_words & top) / len(q_words)
    evidence.missing = missing_terms(
        question=question, chunks=chunks, encode=encode, chunk_words=chunk_words
    )
    if _AMOUNT_ASKED.search(question or ""):
        # The best unit itself must hold an amount (a price elsewhere is another thing's).
        evidence.wanted_type_found = bool(units) and bool(_AMOUNT.search(units[0].plain))
    return evidence


def _covered_by_parts(word: str, vocabulary: set[str]) -> bool:
    """ "ebike" = "e" + "bike", "tuneup" = "tune" + "up": a compound of known words."""
    for cut in range(1, len(word)):
        head, tail = word[:cut], word[cut:]
        if (len(head) == 1 or head in vocabulary) and lexicon.stem(tail) in vocabulary:
            return True
    return False


def _chunk_text(chunk: Any) -> str:
    """A chunk's text with its title and headings (what its words are searched in)."""
    return (
        f"{getattr(chunk, 'text', '')} {getattr(chunk, 'title', '')} "
        f"{' '.join(getattr(chunk, 'heading_path', None) or [])}"
    )


def missing_terms(
    *,
    question: str,
    chunks: Sequence[Any],
    encode: Any,
    limit_chunks: int = SYNONYM_CHUNKS,
    chunk_words: Sequence[set[str]] | None = None,
) -> list[str]:
    """The question's words (as the customer wrote them) that the retrieved chunks never use,
    nor a typo, compound or close synonym of them: "Do you sell kids bikes?" -> ["kids"].
    `chunk_words`: the chunks' content words, when the caller has them already."""
    if chunk_words is None:
        chunk_words = [lexicon.content_words(_chunk_text(c)) for c in chunks]
    vocabulary = set().union(*chunk_words)
    flat = {v.replace("-", "") for v in vocabulary}
    asked: dict[str, str] = {}
    for surface in lexicon.words(_QUESTION_FORM.sub(" ", question or "")):
        stem = lexicon.stem(surface)
        if (
            stem in vocabulary
            or stem in lexicon.GENERIC_WORDS
            or surface in STOPWORDS
            or len(surface) < 2
            or any(ch.isdigit() for ch in surface)
            or "'" in surface
            or stem.replace("-", "") in flat
        ):
            continue
        asked.setdefault(stem, surface)
    unknown = []
    for stem, surface in asked.items():
        if len(stem) >= 4 and difflib.get_close_matches(
            stem, [v for v in vocabulary if v[:1] == stem[:1]], n=1, cutoff=TYPO_SIMILARITY
        ):
            continue
        if _covered_by_parts(surface.replace("-", ""), vocabulary):
            continue
        unknown.append(surface)
    if not unknown:
        return []
    near = lexicon.vocabulary_words(_chunk_text(c) for c in chunks[:limit_chunks])
    near = near[:SYNONYM_MAX_WORDS]
    if not near:
        return unknown
    return lexicon.without_synonyms(
        unknown, embed_texts(near, encode), lambda texts: embed_texts(texts, encode)
    )


def select(evidence: Evidence, *, max_units: int = EXTRACTIVE_MAX_UNITS) -> list[Unit]:
    """The 1-3 units that answer the question: the best, and close runners-up that add
    something (no near-duplicates, no item already inside a chosen list)."""
    if not evidence.units:
        return []
    best = evidence.units[0]
    if best.kind == "curated" and best.cosine >= CURATED_MIN_SCORE:
        return [best]
    chosen = [best]
    length = len(best.text)
    follow_up = next(
        (
            u
            for u in evidence.units[1:]
            if best.kind == "sentence"
            and u.kind == "sentence"
            and u.chunk == best.chunk
            and u.position == best.position + 1
            and u.score >= best.score - FOLLOW_UP_MARGIN
        ),
        None,
    )
    if follow_up is not None and length + len(follow_up.text) <= EXTRACTIVE_MAX_CHARS:
        chosen.append(follow_up)
        length += len(follow_up.text)
    for unit in evidence.units[1:]:
        if unit in chosen:
            continue
        if len(chosen) >= max_units or unit.score < best.score - EXTRACTIVE_MARGIN:
            break
        if length + len(unit.text) > EXTRACTIVE_MAX_CHARS:
            continue
        words = lexicon.content_words(unit.plain)
        if any(
            lexicon.jaccard(words, lexicon.content_words(c.plain)) >= 0.6
            or (c.kind == "list" and c.chunk == unit.chunk and unit.plain in c.plain)
            or (unit.kind == "list" and c.chunk == unit.chunk and c.plain in unit.plain)
            for c in chosen
        ):
            continue
        # Stay on the best unit's document unless the runner-up is nearly as good.
        same_document = _document(evidence, unit) == _document(evidence, best)
        if not same_document and unit.score < best.score - EXTRACTIVE_MARGIN / 2:
            continue
        chosen.append(unit)
        length += len(unit.text)
    # Read in the order of the source, as a person would write it.
    return sorted(chosen, key=lambda u: (u.chunk != best.chunk, u.chunk, u.position))


def prompt_units(evidence: Evidence, *, budget_chars: int) -> list[Unit]:
    """The top units for the model's prompt within a character budget (~4 characters a
    token), skipping items already inside a chosen list."""
    chosen: list[Unit] = []
    used = 0
    for unit in evidence.units:
        if any(
            unit.chunk == c.chunk and (unit.plain in c.plain or c.plain in unit.plain)
            for c in chosen
        ):
            continue
        if used + len(unit.plain) > budget_chars and chosen:
            continue
        chosen.append(unit)
        used += len(unit.plain)
        if used >= budget_chars:
            break
    return chosen


def _document(evidence: Evidence, unit: Unit) -> str:
    return str(getattr(evidence.chunks[unit.chunk], "document_id", unit.chunk))


# --- Links in quoted text -----------------------------------------------------------------------

_BARE_URL = re.compile(r"(?<![(`<])\bhttps?://[^\s<>()\[\]]+")


def defuse_links(text: str, *, trusted_hosts: set[str]) -> str:
    """Markdown links and bare URLs to hosts the tenant does not trust become plain text, so a
    hostile document cannot make the assistant show a clickable phishing link."""

    def trusted(url: str) -> bool:
        host = (urlparse(url if "://" in url else f"https://{url}").hostname or "").lower()
        return any(host == h or host.endswith("." + h) for h in trusted_hosts)

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if url.startswith("mailto:") or trusted(url):
            return match.group(0)
        return f"{label} (`{url}`)" if label.strip() != url.strip() else f"`{url}`"

    def bare(match: re.Match[str]) -> str:
        url = match.group(0)
        return url if trusted(url) else f"`{url}`"

    text = _MD_LINK.sub(link, text)
    return _BARE_URL.sub(bare, text)
