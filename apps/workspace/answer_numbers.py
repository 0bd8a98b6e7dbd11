"""Numbers in answers and in the knowledge, normalised for the invented-number check of
`answer_metrics` ("$6.95" = "6.95 USD" = "6.95", "two hours" = "2 hours", "6 pm" = "18:00",
"1,000" = "1000"; an amount or a percentage keeps its kind). Pure functions, no database."""

from __future__ import annotations

import re
from collections.abc import Callable

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
