"""Words as the guard (grounding.py) and the evidence gate compare them: Snowball stems, content
words (no stopwords), the generic words that never decide what a question asks, a text's
vocabulary, and synonyms by word embeddings. Nothing here knows Django: the embedding function
is passed in."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import snowballstemmer

from apps.assistant.answer_text import without_citations
from apps.knowledge.embeddings import STOPWORDS

Embed = Callable[[Sequence[str]], np.ndarray]

# A word means nearly the same as another at this word cosine or above ("bitcoin" ~
# "cryptocurrency" 0.71, "bought" ~ "purchased" 0.91; "kids" ~ "bikes" 0.33, "rent" ~
# "financing" 0.48): used for question words the knowledge lacks and answer words the facts lack.
SYNONYM_COSINE = 0.6

_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?", re.UNICODE)


@functools.cache
def _stemmer():
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
