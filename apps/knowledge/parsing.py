"""Turn uploaded bytes (Markdown, HTML, PDF, DOCX, plain text) into heading-aware sections.

Every failure a user can cause (bad, encrypted, empty, oversized or unsupported input) surfaces
as one exception type, :class:`ParseError`, carrying a human-readable ``reason``. Library
exceptions never escape: parsers of untrusted files raise anything from ``KeyError`` to
``RecursionError``, and callers should not have to know which.
"""

from __future__ import annotations

import io
import logging
import re
import signal
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal

logger = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- entry point

_CONTENT_TYPES: dict[str, Format] = {
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/plain": "text",
}

_EXTENSIONS: dict[str, Format] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".csv": "text",
}


def parse_document(
    *,
    data: bytes,
    filename: str,
    content_type: str | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> ParsedDocument:
    """Parse ``data`` into a :class:`ParsedDocument` or raise :class:`ParseError`."""
    if not data or not data.strip():
        raise ParseError("The file is empty.")
    if len(data) > limits.max_bytes:
        raise ParseError(
            f"The file is too large ({len(data):,} bytes; the limit is {limits.max_bytes:,})."
        )
    fmt = detect_format(data=data, filename=filename, content_type=content_type)
    parser = _PARSERS[fmt]
    try:
        with _time_limit(limits.max_parse_seconds):
            doc = parser(data, filename, content_type, limits)
    except _ParseTimeout as exc:
        raise ParseError(
            f"The {fmt.upper()} file took too long to read "
            f"(more than {limits.max_parse_seconds:g} seconds)."
        ) from exc
    except ParseError:
        raise
    except Exception as exc:
        logger.info("parse failed for %r as %s: %r", filename, fmt, exc)
        raise ParseError(f"The {fmt.upper()} file could not be read (it may be damaged).") from exc

    sections = [s for s in doc.sections if s.text.strip()]
    if not sections:
        raise ParseError("The document contains no extractable text.")
    total = sum(len(s.text) for s in sections)
    if total > limits.max_chars:
        raise ParseError(
            f"The document has too much text ({total:,} characters; "
            f"the limit is {limits.max_chars:,})."
        )
    doc.sections = sections
    doc.metadata.setdefault("format", fmt)
    doc.metadata["chars"] = total
    return doc


class _ParseTimeout(BaseException):  # a BaseException, so no parser swallows it
    """Raised inside a parser when its time is up (see `_time_limit`)."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the parsing in this block after `seconds`.

    In the main thread (Celery's prefork workers, the management commands) a SIGALRM timer
    interrupts even a parser stuck inside one page. Elsewhere only the checks between pages
    (`_check_time`) apply.
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
            raise _ParseTimeout

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


def _check_time() -> None:
    if _deadline is not None and time.monotonic() > _deadline:
        raise _ParseTimeout


_GENERIC_TYPES = frozenset({"", "text/plain", "application/octet-stream"})


def detect_format(*, data: bytes, filename: str, content_type: str | None = None) -> Format:
    """Pick a parser from magic bytes first (they cannot lie), then content type, then suffix."""
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        if _is_docx(data):
            return "docx"
        raise ParseError("Unsupported archive type (only .docx Word documents are accepted).")

    mime = (content_type or "").split(";", 1)[0].strip().lower()
    suffix = PurePath(filename or "").suffix.lower()
    if mime in _GENERIC_TYPES:
        # Browsers send text/plain or octet-stream for .md and friends: the suffix knows better.
        fmt = _EXTENSIONS.get(suffix) or _CONTENT_TYPES.get(mime)
    else:
        fmt = _CONTENT_TYPES.get(mime) or _EXTENSIONS.get(suffix)
    if fmt in ("pdf", "docx"):
        # Declared binary format but the magic bytes did not match.
        raise ParseError(f"The file is not a valid {fmt.upper()} file.")
    if fmt is None and mime in ("", "application/octet-stream") and not suffix:
        lowered = head[:256].lower()
        fmt = "html" if lowered.startswith((b"<!doctype html", b"<html")) else "text"
    if fmt is None:
        shown = suffix or mime or "unknown"
        raise ParseError(
            f"Unsupported file type ({shown}). Supported: Markdown, HTML, PDF, DOCX, plain text."
        )
    return fmt


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return "word/document.xml" in zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


# --------------------------------------------------------------------------- text helpers

_NUL_RE = re.compile(r"\x00")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_TRAILING_WS_RE = re.compile(r"[ \t]+\n")


def _decode(data: bytes, content_type: str | None) -> str:
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
        import charset_normalizer  # trafilatura dependency; slow-ish, so only as a fallback

        best = charset_normalizer.from_bytes(data).best()
        if best is None:
            raise ParseError("The file is not valid text (unknown encoding or binary data).")
        text = str(best)
    if "\x00" in text[:8192]:
        raise ParseError("The file looks binary, not text.")
    return text


def _clean(text: str) -> str:
    text = _NUL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _TRAILING_WS_RE.sub("\n", text)
    return _BLANK_LINES_RE.sub("\n\n", text).strip()


def _stem_title(filename: str) -> str:
    return PurePath(filename or "").stem.replace("_", " ").strip() or "Untitled"


class _SectionBuilder:
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
        text = _clean("\n\n".join(self._blocks))
        if text:
            self.sections.append(Section(heading_path=tuple(t for _, t in self._stack), text=text))
        self._blocks = []


# --------------------------------------------------------------------------- markdown


def _parse_markdown_text(text: str) -> tuple[list[Section], str | None]:
    """Split Markdown on headings; block bodies keep their Markdown source (lists, tables)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    lines = text.split("\n")
    builder = _SectionBuilder()
    first_h1: str | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.level != 0 or tok.map is None or tok.nesting == -1:
            i += 1
            continue
        if tok.type == "heading_open":
            inline = tokens[i + 1] if i + 1 < len(tokens) else None
            heading = _inline_text(inline.children or []) if inline is not None else ""
            level = int(tok.tag[1:])
            if level == 1 and first_h1 is None and heading:
                first_h1 = heading
            builder.heading(level, heading)
        else:
            # Slice the original source so Markdown structure survives for the LLM context.
            start, end = tok.map
            builder.add("\n".join(lines[start:end]))
        i += 1
    builder.flush()
    return builder.sections, first_h1


def _inline_text(children: Iterable[Any]) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts).strip()


def _parse_markdown(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
    text = _decode(data, content_type)
    sections, first_h1 = _parse_markdown_text(text)
    return ParsedDocument(
        title=first_h1 or _stem_title(filename), sections=sections, metadata={"format": "markdown"}
    )


# --------------------------------------------------------------------------- html


def _parse_html(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
    import trafilatura

    html = _decode(data, content_type)
    # Main-content extraction drops navigation/footers; Markdown output keeps the headings,
    # so the Markdown splitter gives HTML the same heading paths as .md files.
    extracted = trafilatura.extract(
        html,
        output_format="markdown",
        include_tables=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        include_formatting=True,
        favor_recall=True,
    )
    meta = trafilatura.extract_metadata(html)
    page_title = (meta.title if meta is not None else None) or _html_title(html)
    metadata: dict[str, Any] = {"format": "html", "extraction": "main-content"}
    if meta is not None and meta.url:
        metadata["url"] = meta.url
    if extracted and extracted.strip():
        sections, first_h1 = _parse_markdown_text(extracted)
    else:
        # Pages trafilatura judges as "no main content" (short FAQ snippets, odd layouts):
        # keep all visible text rather than rejecting a page the user meant to upload.
        fallback = trafilatura.html2txt(html) or ""
        sections = [Section(heading_path=(), text=_clean(fallback))] if fallback.strip() else []
        first_h1 = None
        metadata["extraction"] = "full-text-fallback"
    title = page_title or first_h1 or _stem_title(filename)
    return ParsedDocument(title=title.strip(), sections=sections, metadata=metadata)


_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _html_title(html: str) -> str | None:
    import html as html_lib

    match = _TITLE_RE.search(html[:65536])
    if match is None:
        return None
    return " ".join(html_lib.unescape(match.group(1)).split()) or None


# --------------------------------------------------------------------------- pdf


def _parse_pdf(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except PdfReadError as exc:
        raise ParseError("The PDF file is damaged or not a PDF.") from exc
    if reader.is_encrypted:
        # Owner-password-only PDFs (print/copy restrictions) open with an empty user password;
        # anything needing a real password is rejected.
        try:
            ok = reader.decrypt("")
        except (FileNotDecryptedError, NotImplementedError, PdfReadError) as exc:
            raise ParseError("The PDF is password-protected.") from exc
        if not ok:
            raise ParseError("The PDF is password-protected.")
    n_pages = len(reader.pages)
    if n_pages > limits.max_pdf_pages:
        raise ParseError(
            f"The PDF has too many pages ({n_pages}; the limit is {limits.max_pdf_pages})."
        )
    outline = _pdf_outline_starts(reader)
    sections: list[Section] = []
    chars = 0
    path: tuple[str, ...] = ()
    for index, page in enumerate(reader.pages):
        _check_time()
        # The outline (bookmarks) is the only heading structure a PDF reliably has.
        path = outline.get(index, path)
        text = _clean(page.extract_text() or "")
        chars += len(text)
        if chars > limits.max_chars:
            raise ParseError(f"The PDF has too much text (limit {limits.max_chars:,} characters).")
        if text:
            sections.append(Section(heading_path=path, text=text, page=index + 1))
    if not sections:
        raise ParseError("The PDF has no extractable text (scanned images are not supported).")
    info_title = None
    try:
        info_title = reader.metadata.title if reader.metadata else None
    except Exception:  # noqa: BLE001 - broken info dicts are common and irrelevant
        info_title = None
    title = (info_title or "").strip() or (outline_title(outline) or _stem_title(filename))
    return ParsedDocument(
        title=title, sections=sections, metadata={"format": "pdf", "pages": n_pages}
    )


def _pdf_outline_starts(reader: Any) -> dict[int, tuple[str, ...]]:
    """Map page index -> heading path of the last outline entry starting on that page."""
    starts: dict[int, tuple[str, ...]] = {}

    def walk(items: list[Any], parents: tuple[str, ...]) -> None:
        last: tuple[str, ...] = parents
        for item in items:
            if isinstance(item, list):
                walk(item, last)
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if not title:
                continue
            last = (*parents, title)
            try:
                page_index = reader.get_destination_page_number(item)
            except Exception:  # noqa: BLE001, S112 - dangling destinations are common
                continue
            if page_index is not None and page_index >= 0:
                starts.setdefault(page_index, last)

    try:
        walk(list(reader.outline), ())
    except Exception:  # noqa: BLE001 - a broken outline must not fail the whole document
        return {}
    return starts


def outline_title(outline: dict[int, tuple[str, ...]]) -> str | None:
    """Top-level title of the first outline entry, if the PDF has one."""
    if not outline:
        return None
    return outline[min(outline)][0]


# --------------------------------------------------------------------------- docx

_HEADING_STYLE_RE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _parse_docx(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = zf.infolist()
        uncompressed = sum(info.file_size for info in members)
    if len(members) > limits.max_docx_members:
        raise ParseError(f"The DOCX file has too many parts ({len(members):,}).")
    if uncompressed > limits.max_docx_uncompressed_bytes:
        raise ParseError(
            f"The DOCX file expands to too much data ({uncompressed:,} bytes; the limit is "
            f"{limits.max_docx_uncompressed_bytes:,})."
        )

    document = docx.Document(io.BytesIO(data))
    builder = _SectionBuilder()
    style_title: str | None = None
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = block.text.strip()
            if not text:
                continue
            level = _docx_heading_level(block)
            if level == 0:
                style_title = style_title or text
                continue
            if level is not None:
                builder.heading(level, text)
            else:
                builder.add(text)
        elif isinstance(block, Table):
            builder.add(_docx_table_text(block))
    builder.flush()
    core_title = (document.core_properties.title or "").strip()
    first_path = builder.sections[0].heading_path if builder.sections else ()
    first_heading = first_path[0] if first_path else None
    title = core_title or style_title or first_heading or _stem_title(filename)
    return ParsedDocument(title=title, sections=builder.sections, metadata={"format": "docx"})


def _docx_heading_level(paragraph: Any) -> int | None:
    """0 for the Title style, 1-9 for Heading N (also via base styles), None for body text."""
    style = paragraph.style
    for _ in range(4):  # custom styles often inherit from "Heading N"
        if style is None:
            return None
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 0
        match = _HEADING_STYLE_RE.match(name)
        if match:
            return int(match.group(1))
        style = style.base_style
    return None


def _docx_table_text(table: Any) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            value = " ".join(cell.text.split())
            # Merged cells repeat in python-docx; keep one copy per run.
            if not cells or cells[-1] != value:
                cells.append(value)
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# --------------------------------------------------------------------------- plain text


def _parse_text(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
    text = _clean(_decode(data, content_type))
    return ParsedDocument(
        title=_stem_title(filename),
        sections=[Section(heading_path=(), text=text)] if text else [],
        metadata={"format": "text"},
    )


_PARSERS: dict[Format, Callable[[bytes, str, str | None, ParseLimits], ParsedDocument]] = {
    "markdown": _parse_markdown,
    "html": _parse_html,
    "pdf": _parse_pdf,
    "docx": _parse_docx,
    "text": _parse_text,
}
