"""What parsing produces and the limits it works under: `ParseError`, `ParseLimits`, `Section`,
`ParsedDocument`; the time limit every parser runs under (`time_limit`, `check_time`); and the
text helpers the format parsers share (decoding, cleaning, `SectionBuilder`)."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal

import charset_normalizer

Format = Literal["markdown", "html", "pdf", "docx", "text"]

SUPPORTED_FORMATS: tuple[Format, ...] = ("markdown", "html", "pdf", "docx", "text")


class ParseError(Exception):
    """The document cannot be turned into text; ``reason`` is safe to show to the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Upper bounds that protect workers from huge or hostile uploads."""

    max_bytes: int = 25 * 1024 * 1024
    max_pdf_pages: int = 1000
    # Extracted text; guards against compression bombs (DOCX, PDF streams) after decoding.
    max_chars: int = 5_000_000
    # Sum of uncompressed member sizes of a DOCX archive, checked before python-docx reads it
    # (zipfile refuses members larger than they declare). Pictures do not compress, so a real
    # document stays near its upload size; only a compression bomb comes near this.
    max_docx_uncompressed_bytes: int = 50 * 1024 * 1024
    max_docx_members: int = 2000
    # Wall-clock seconds one document may take to parse (hostile PDFs can loop for minutes).
    max_parse_seconds: float = 120.0


DEFAULT_LIMITS = ParseLimits()


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text under one heading path, e.g. ``("Billing", "Refunds")``."""

    heading_path: tuple[str, ...]
    text: str
    # 1-based page number for PDFs (useful for citations); None for other formats.
    page: int | None = None


@dataclass(slots=True)
class ParsedDocument:
    """The parser's output: a title, ordered sections and format metadata."""

    title: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """All section texts joined, for previews and hashing."""
        return "\n\n".join(s.text for s in self.sections)


class ParseTimeout(BaseException):  # a BaseException, so no parser swallows it
    """Raised inside a parser when its time is up (see `time_limit`)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the parsing in this block after `seconds`.

    In the main thread (Celery's prefork workers, the management commands) a SIGALRM timer
    interrupts even a parser stuck inside one page. Elsewhere only the checks between pages
    (`check_time`) apply.
    """
    global _deadline
    previous_deadline = _deadline
    _deadline = time.monotonic() + seconds if seconds > 0 else None
    use_signal = (
        seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    previous_handler = None
    previous_timer = (0.0, 0.0)
    started = time.monotonic()
    if use_signal:

        def on_alarm(signum: int, frame: Any) -> None:
            raise ParseTimeout

        previous_handler = signal.signal(signal.SIGALRM, on_alarm)
        # Then again every 50 ms: an exception raised while a finalizer runs is swallowed by
        # the interpreter, and the next alarm must still stop the parser.
        previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield
    finally:
        if use_signal:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_handler)
            if previous_timer[0] > 0:  # give back whoever's timer was running (pytest-timeout)
                left = max(previous_timer[0] - (time.monotonic() - started), 0.001)
                signal.setitimer(signal.ITIMER_REAL, left, previous_timer[1])
        _deadline = previous_deadline


_deadline: float | None = None


def check_time() -> None:
    if _deadline is not None and time.monotonic() > _deadline:
        raise ParseTimeout


_NUL_RE = re.compile(r"\x00")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_TRAILING_WS_RE = re.compile(r"[ \t]+\n")


def decode(data: bytes, content_type: str | None) -> str:
    """Decode text bytes: BOM/UTF-8, then the declared charset, then detection."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None and content_type and "charset=" in content_type.lower():
        charset = content_type.lower().split("charset=", 1)[1].split(";")[0].strip(" \"'")
        try:
            text = data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            text = None
    if text is None:
        best = charset_normalizer.from_bytes(data).best()
        if best is None:
            raise ParseError("The file is not valid text (unknown encoding or binary data).")
        text = str(best)
    if "\x00" in text[:8192]:
        raise ParseError("The file looks binary, not text.")
    return text


def clean(text: str) -> str:
    text = _NUL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _TRAILING_WS_RE.sub("\n", text)
    return _BLANK_LINES_RE.sub("\n\n", text).strip()


def stem_title(filename: str) -> str:
    return PurePath(filename or "").stem.replace("_", " ").strip() or "Untitled"


class SectionBuilder:
    """Accumulates text blocks under a heading stack; a new heading closes the open section."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self._blocks: list[str] = []
        self.sections: list[Section] = []

    def heading(self, level: int, text: str) -> None:
        self.flush()
        text = " ".join(text.split())
        if not text:
            return
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))

    def add(self, block: str) -> None:
        if block.strip():
            self._blocks.append(block)

    def flush(self) -> None:
        text = clean("\n\n".join(self._blocks))
        if text:
            self.sections.append(Section(heading_path=tuple(t for _, t in self._stack), text=text))
        self._blocks = []
