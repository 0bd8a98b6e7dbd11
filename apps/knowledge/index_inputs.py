"""What the indexing pipeline takes in, and the hashes that tell a changed document from an
unchanged one: `DocumentInput`, stored sections to and from JSON, the content and payload hashes,
and the title put at the head of every chunk's heading path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from apps.knowledge.parsing import ParseLimits, Section


@dataclass
class DocumentInput:
    """One document as fetched: raw bytes to parse, or sections parsed already."""

    key: str
    filename: str = ""
    data: bytes | None = None
    content_type: str | None = None
    title: str = ""
    url: str = ""
    etag: str = ""
    last_modified: str = ""
    links: list[str] = field(default_factory=list)
    sections: list[Section] | None = None


def parse_limits() -> ParseLimits:
    return ParseLimits(
        max_bytes=settings.KNOWLEDGE_UPLOAD_MAX_BYTES,
        max_parse_seconds=settings.KNOWLEDGE_PARSE_TIMEOUT,
    )


def sections_to_json(sections: Sequence[Section]) -> list[list[Any]]:
    return [[list(s.heading_path), s.text, s.page] for s in sections]


def sections_from_json(data: Sequence[Sequence[Any]]) -> list[Section]:
    return [Section(heading_path=tuple(h), text=t, page=p) for h, t, p in data]


def sections_hash(sections: Sequence[Section]) -> str:
    payload = json.dumps(sections_to_json(sections), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def titled_sections(
    sections: Sequence[Section], *, title: str, chunking: dict[str, Any]
) -> list[Section]:
    """Put the title at the head of every heading path, so each chunk's embedded text names
    the document it comes from (short FAQ answers are otherwise ambiguous)."""
    if not chunking.get("title_in_embed", True) or not title.strip():
        return list(sections)
    title = " ".join(title.split())[:200]
    out = []
    for section in sections:
        path = section.heading_path
        if not path or path[0].strip().casefold() != title.casefold():
            path = (title, *path)
        out.append(Section(heading_path=path, text=section.text, page=section.page))
    return out


def payload_hash(*, title: str, url: str, access_groups: Sequence[str]) -> str:
    data = json.dumps([title, url, sorted(access_groups)], separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:32]
