"""The entry point: `parse_document` detects the format, runs its parser under the time limit
and checks what came out; `detect_format` from the content type, name and bytes."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable
from pathlib import PurePath

from apps.knowledge.parsing.base import (
    DEFAULT_LIMITS,
    Format,
    ParsedDocument,
    ParseError,
    ParseLimits,
    ParseTimeout,
    time_limit,
)

logger = logging.getLogger(__name__)

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
    parser = _parser(fmt)
    try:
        with time_limit(limits.max_parse_seconds):
            doc = parser(data, filename, content_type, limits)
    except ParseTimeout as exc:
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


Parser = Callable[[bytes, str, str | None, ParseLimits], ParsedDocument]


def _parser(fmt: Format) -> Parser:
    # Heavy optional libraries (pypdf, python-docx, trafilatura, markdown-it): loaded when a
    # document is parsed (in the worker), not by every process that imports this package.
    from apps.knowledge.parsing import office_formats, text_formats

    parsers: dict[Format, Parser] = {
        "markdown": text_formats.parse_markdown,
        "html": text_formats.parse_html,
        "pdf": office_formats.parse_pdf,
        "docx": office_formats.parse_docx,
        "text": text_formats.parse_text,
    }
    return parsers[fmt]
