"""Turn uploaded bytes (Markdown, HTML, PDF, DOCX, plain text) into heading-aware sections.

Every failure a user can cause (bad, encrypted, empty, oversized or unsupported input) surfaces
as one exception type, :class:`ParseError`, carrying a human-readable ``reason``. Library
exceptions never escape: parsers of untrusted files raise anything from ``KeyError`` to
``RecursionError``, and callers should not have to know which.
"""

from apps.knowledge.parsing.base import (
    DEFAULT_LIMITS,
    SUPPORTED_FORMATS,
    Format,
    ParsedDocument,
    ParseError,
    ParseLimits,
    Section,
)
from apps.knowledge.parsing.document import detect_format, parse_document

__all__ = [
    "DEFAULT_LIMITS",
    "SUPPORTED_FORMATS",
    "Format",
    "ParseError",
    "ParseLimits",
    "ParsedDocument",
    "Section",
    "detect_format",
    "parse_document",
]
