"""Parsers of the office formats: PDF (pages, outline headings) and DOCX (heading styles,
tables), both with guards against hostile files."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from apps.knowledge.parsing.base import (
    ParsedDocument,
    ParseError,
    ParseLimits,
    Section,
    SectionBuilder,
    check_time,
    clean,
    stem_title,
)


def parse_pdf(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
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
        check_time()
        # The outline (bookmarks) is the only heading structure a PDF reliably has.
        path = outline.get(index, path)
        text = clean(page.extract_text() or "")
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
    title = (info_title or "").strip() or (outline_title(outline) or stem_title(filename))
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


_HEADING_STYLE_RE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def parse_docx(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
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
    builder = SectionBuilder()
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
    title = core_title or style_title or first_heading or stem_title(filename)
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
