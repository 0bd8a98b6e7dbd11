"""The text of an answer as the guard (grounding.py) and the engine see it: markup stripped to
the widget's Markdown subset, sentences split (also while streaming), citation markers and list
marks read and removed. Nothing here knows Django."""

from __future__ import annotations

import html
import re

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
CITATION = re.compile(r"\s*\[(\d{1,2}(?:\s*,\s*\d{1,2})*)\]")
_LIST_MARK = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
# A list number on its own ("1."), before its item has come.
_LIST_NUMBER = re.compile(r"^\d{1,2}[.)]$")
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
    carried = ""  # a list number ("1.") whose item is on the next line
    for line in (text or "").splitlines():
        line = f"{carried} {line.strip()}".strip()
        carried = ""
        if not line:
            continue
        start = 0
        for match in _BOUNDARY.finditer(line):
            end = match.end(1)
            candidate = line[start:end].strip()
            last_word = candidate.split()[-1].lower() if candidate.split() else ""
            if last_word in _ABBREVIATIONS or re.search(r"\b[A-Z]\.$", candidate):
                continue
            if _LIST_NUMBER.match(candidate):
                continue  # "1. Part: Frame ..." is one item, not "1." and a sentence
            if candidate:
                sentences.append(candidate)
            start = match.end()
        rest = line[start:].strip()
        if _LIST_NUMBER.match(rest):
            carried = rest
        elif rest:
            sentences.append(rest)
    if carried:
        sentences.append(carried)
    return sentences


def complete_sentences(buffer: str) -> tuple[list[str], str]:
    """The finished sentences at the head of a streaming `buffer`, and what is left over.

    A sentence is finished once the text after it has begun (so a trailing citation marker
    still belongs to it) or a line has ended."""
    parts = split_sentences(buffer)
    if not parts:
        return [], buffer
    if buffer.endswith("\n"):
        if _LIST_NUMBER.match(parts[-1]):
            return parts[:-1], buffer[buffer.rfind(parts[-1]) :]  # its item is yet to come
        return parts, ""
    *done, last = parts
    tail_start = buffer.rfind(last)
    return done, buffer[tail_start:] if tail_start >= 0 else last


def citation_numbers(sentence: str) -> list[int]:
    numbers: list[int] = []
    for group in CITATION.findall(sentence):
        numbers.extend(int(n) for n in group.split(","))
    return numbers


def without_citations(sentence: str) -> str:
    return CITATION.sub("", sentence).strip()


def without_list_mark(sentence: str) -> str:
    return _LIST_MARK.sub("", sentence)
