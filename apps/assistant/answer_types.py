"""What the answer engine (engine.py) takes and gives: `Request`, one question of a tenant with
its history; `EngineAnswer`, what was shown and why; `Emit`, where visible text goes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Emit = Callable[[str], Awaitable[None]]


@dataclass
class Request:
    tenant: Any
    question: str
    company: str = ""
    history: Sequence[tuple[str, str]] = ()
    access_groups: list[str] | None = None
    language: str = ""
    started: float = field(default_factory=time.monotonic)
    # The chat's conversation and the customer's message (actions need both; None elsewhere).
    conversation: Any = None
    message: Any = None

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


@dataclass
class EngineAnswer:
    content: str
    citations: list[dict[str, Any]]
    decision: str
    strategy: str
    answerability: float | None
    grounding: dict[str, Any]
    first_token_ms: int | None
    total_ms: int
    chunks: list[Any] = field(default_factory=list)
    retrieval_ms: int | None = None
    handoff_reason: str = ""
    model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_estimated: bool = False
    failed: bool = False  # the model stopped mid-answer (generative): what was said is kept
    query: str = ""

    @property
    def outcome(self) -> str:
        return str(self.grounding.get("outcome", ""))
