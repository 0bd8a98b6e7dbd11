"""Parsers of the text formats: Markdown (split on headings), HTML (main content, then as
Markdown) and plain text."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable
from typing import Any

import trafilatura
from markdown_it import MarkdownIt

from apps.knowledge.parsing.base import (
    ParsedDocument,
    ParseLimits,
    Section,
    SectionBuilder,
    clean,
    decode,
    stem_title,
)


def parse_markdown_text(text: str) -> tuple[list[Section], str | None]:
    """Split Markdown on headings; block bodies keep their Markdown source (lists, tables)."""
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    lines = text.split("\n")
    builder = SectionBuilder()
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


def parse_markdown(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
    text = decode(data, content_type)
    sections, first_h1 = parse_markdown_text(text)
    return ParsedDocument(
        title=first_h1 or stem_title(filename), sections=sections, metadata={"format": "markdown"}
    )


def parse_html(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
    html = decode(data, content_type)
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
        sections, first_h1 = parse_markdown_text(extracted)
    else:
        # Pages trafilatura judges as "no main content" (short FAQ snippets, odd layouts):
        # keep all visible text rather than rejecting a page the user meant to upload.
        fallback = trafilatura.html2txt(html) or ""
        sections = [Section(heading_path=(), text=clean(fallback))] if fallback.strip() else []
        first_h1 = None
        metadata["extraction"] = "full-text-fallback"
    title = page_title or first_h1 or stem_title(filename)
    return ParsedDocument(title=title.strip(), sections=sections, metadata=metadata)


_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _html_title(html: str) -> str | None:
    match = _TITLE_RE.search(html[:65536])
    if match is None:
        return None
    return " ".join(html_lib.unescape(match.group(1)).split()) or None


def parse_text(
    data: bytes, filename: str, content_type: str | None, limits: ParseLimits
) -> ParsedDocument:
    text = clean(decode(data, content_type))
    return ParsedDocument(
        title=stem_title(filename),
        sections=[Section(heading_path=(), text=text)] if text else [],
        metadata={"format": "text"},
    )
