"""Citations and the extractive answer's text: documents numbered by first use, the hosts a link
in an answer may point to, and units of evidence rendered with their citation markers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from apps.assistant import evidence as evidence_mod
from apps.assistant.evidence import Unit


class Citations:
    """Numbers documents by first use, each document once."""

    def __init__(self, chunks: Sequence[Any]) -> None:
        self.chunks = chunks
        self.numbers: dict[str, int] = {}
        self.entries: list[dict[str, Any]] = []

    def number_for(self, unit_chunk: int, snippet: str) -> int:
        chunk = self.chunks[unit_chunk]
        document = str(chunk.document_id)
        if document not in self.numbers:
            n = len(self.numbers) + 1
            self.numbers[document] = n
            self.entries.append(
                {
                    "n": n,
                    "title": chunk.title,
                    "url": chunk.url or None,
                    "snippet": _snippet(snippet),
                    "chunk_id": str(chunk.chunk_id),
                    "document_id": document,
                    "score": round(float(chunk.score), 6),
                }
            )
        return self.numbers[document]


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def trusted_hosts(tenant: Any, chunks: Sequence[Any]) -> set[str]:
    """Hosts a link in an answer may point to: the tenant's own sites and its documents'."""
    hosts = set()
    for origin in getattr(tenant, "allowed_origins", None) or []:
        hosts.add((urlparse(str(origin)).hostname or "").lower())
    for chunk in chunks:
        hosts.add((urlparse(getattr(chunk, "url", "") or "").hostname or "").lower())
    for host in list(hosts):
        if host.startswith("www."):
            hosts.add(host[4:])
    hosts.discard("")
    return hosts


def render_unit(unit: Unit, n: int, hosts: set[str]) -> str:
    text = evidence_mod.defuse_links(unit.text, trusted_hosts=hosts)
    if unit.kind == "list":
        lead, _, items = text.partition("\n")
        if lead.startswith("- "):
            return f"{text} [{n}]"
        return f"{lead} [{n}]\n{items}"
    if unit.kind == "item":
        return text.rstrip(".;,") + f". [{n}]"
    return f"{text} [{n}]"


def extractive_text(units: Sequence[Unit], citations: Citations, hosts: set[str]) -> list[str]:
    """The extractive answer as pieces to show (one per unit)."""
    pieces = []
    for i, unit in enumerate(units):
        n = citations.number_for(unit.chunk, unit.plain)
        text = render_unit(unit, n, hosts)
        if unit.kind == "list" or (i and units[i - 1].kind == "list"):
            text = ("\n" if i else "") + text + "\n"
        elif i:
            text = " " + text
        pieces.append(text)
    return pieces
