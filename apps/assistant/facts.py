"""The checkable facts of a text, normalised: numbers (with number words, times and amounts),
phone numbers, email addresses and URLs; and which facts of an answer its sources lack. The
guard (grounding.py) lets no sentence through with an unknown fact."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from apps.assistant.answer_text import CITATION, without_list_mark
from apps.assistant.lexicon import words

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
NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "single": 1, "twice": 2, "once": 1, "dozen": 12, "half": 0.5,
}  # fmt: skip
# In an answer, a number word is a claim only before a unit ("two hours", not "one of them").
_NUMBER_WORD_WITH_UNIT = re.compile(
    r"\b(" + "|".join(NUMBER_WORDS) + r")(?:[\s-]+(?:full\s+|business\s+|working\s+|calendar\s+)?"
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


def _set_aside(text: str, facts: Facts) -> str:
    """`text` without list marks and citation markers, and without its emails, URLs, phone
    numbers and times, each recorded in `facts`: what is left holds only plain numbers."""
    text = "\n".join(without_list_mark(line) for line in (text or "").splitlines())
    text = CITATION.sub(" ", text)
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
    return text


def extract_facts(text: str, *, all_number_words: bool = False) -> Facts:
    """Numbers (with amounts, percentages, times and number words before units), phone
    numbers, emails and URLs in `text`. Citation markers and list numbering are not facts.

    `all_number_words`: count every number word (for sources, so that an answer may say
    "2 keys" where a source says "two keys"), not only those before a unit."""
    facts = Facts()
    text = _set_aside(text, facts)
    for match in _NUMBER.finditer(text):
        facts.numbers.add(_canonical_number(match.group(1), match.group(2)))
    if all_number_words:
        for word in words(text):
            if word in NUMBER_WORDS:
                facts.numbers.add(_canonical_number(str(NUMBER_WORDS[word]), None))
    else:
        for match in _NUMBER_WORD_WITH_UNIT.finditer(text):
            facts.numbers.add(_canonical_number(str(NUMBER_WORDS[match.group(1).lower()]), None))
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


# A duration's number keeps its unit: "30 days" is not "30 weeks", and "7 business days" is not
# "7 days" (a week and a half, or a week). Working days count as business days, calendar days as
# plain days.
_DURATION = re.compile(
    r"(?<![\w.])(\d+|" + "|".join(NUMBER_WORDS) + r")(?:[\s-]+(business|working|calendar))?"
    r"[\s-]+(second|minute|hour|day|week|month|year)s?\b",
    re.I,
)


def duration_units(text: str) -> dict[str, set[str]]:
    """For each number stated as a duration in `text`, its units ("day", "business day",
    "week", ...)."""
    units: dict[str, set[str]] = {}
    for match in _DURATION.finditer(text or ""):
        amount = match.group(1).lower()
        number = str(NUMBER_WORDS[amount]) if amount in NUMBER_WORDS else amount
        unit = match.group(3).lower()
        if (match.group(2) or "").lower() in {"business", "working"}:
            unit = f"business {unit}"
        units.setdefault(_canonical_number(number, None), set()).add(unit)
    return units


# A range is one fact: "6 to 9 business days" does not say "6 business days", nor "$25 to
# $1,000" "$1,000". Dashes count between bare numbers ("3-5 days"); phone numbers, times, emails
# and URLs are set aside first (`_set_aside`, as for `extract_facts`).
_AMOUNT = r"[$€£]?\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
_RANGE = re.compile(
    rf"(?<![\w.]){_AMOUNT}\s*(?:%|[a-z]+)?\s*(?:to|\u2013|\u2014|-)\s*{_AMOUNT}(?!\w|\.\d|-\d)"
    rf"|\bbetween\s+{_AMOUNT}\s*(?:%|[a-z]+)?\s*and\s+{_AMOUNT}(?!\w|\.\d)",
    re.I,
)


@dataclass
class Ranges:
    """The numbers a text states as the ends of a range, and those it states on their own."""

    ends: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    alone: set[str] = field(default_factory=set)

    def update(self, other: Ranges) -> None:
        for number, pairs in other.ends.items():
            self.ends.setdefault(number, set()).update(pairs)
        self.alone |= other.alone

    def cut(self, claimed: set[str], stated: set[str]) -> tuple[str, str] | None:
        """A range of which a `claimed` number is one end, stated nowhere on its own, while
        `stated` (every number of the answer, number words included) lacks the other end
        ("6 business days" where the text only says "6 to 9 business days"); else None."""
        for number in sorted(claimed - self.alone):
            for low, high in sorted(self.ends.get(number, ())):
                if not {low, high} <= stated:
                    return low, high
        return None


def number_ranges(text: str) -> Ranges:
    """The ranges of `text` (each end with the range it belongs to) and its other numbers."""
    text = _set_aside(text, Facts())
    ranges = Ranges()

    def record(match: re.Match[str]) -> str:
        groups = match.groups()
        first = groups[0:4] if groups[0] is not None else groups[4:8]
        low = _canonical_number(first[0], first[1])
        high = _canonical_number(first[2], first[3])
        for number in (low, high):
            ranges.ends.setdefault(number, set()).add((low, high))
        return " "

    rest = _RANGE.sub(record, text)
    ranges.alone = extract_facts(rest, all_number_words=True).numbers
    return ranges
