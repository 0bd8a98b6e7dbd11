"""The answer engine: one flow for the three strategies (ASSISTANT_MODE).

    classify → retrieve (knowledge + curated answers) → evidence (scored sentences)
    → answerability → decide → answer:
        extractive   the 1-3 units of evidence that answer the question, each cited
        generative   the model's answer over the top evidence, unchecked
        grounded     the model's answer through the guard, sentence by sentence; when it fails,
                     the extractive answer (after any sentences already shown)

The chat (websocket and HTTP), reply suggestions and `evaluate_answers` all call `answer()`;
only what happens to the visible text (`emit`) and to the result differs. Nothing here writes
to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings

from apps.analytics import metrics
from apps.assistant import evidence as evidence_mod
from apps.assistant import grounding, llm, prompts, scope
from apps.assistant.evidence import Evidence, Unit
from apps.conversations.models import AnswerStrategy, Decision, HandoffReason
from apps.core.asyncdb import db_async

logger = logging.getLogger(__name__)

Emit = Callable[[str], Awaitable[None]]

# Answerability = weighted evidence signals, each 0-1 (calibrated on the demo answer set with
# `manage.py evaluate_answers`; docs/chat.md has the numbers).
COSINE_FLOOR, COSINE_CEILING = 0.2, 0.65
WEIGHT_COSINE, WEIGHT_KEYWORDS, WEIGHT_COVERAGE = 0.5, 0.25, 0.25
# Taken off for each question word the knowledge never uses (nor a synonym: "kids", "rent",
# "hiring"), at most MISSING_MAX; and when a "how much" question finds no amount.
MISSING_PENALTY, MISSING_MAX = 0.1, 0.3
NO_AMOUNT_PENALTY = 0.2
# A grounded answer must state every number of the best evidence when it has at most this many.
KEY_NUMBERS_ALL = 3
# ... and at least this share of its content words.
KEY_WORDS_SHARE = 0.5
# How much the guard's verdict moves the stored score once the model has answered.
WEIGHT_GUARD = 0.2
# An answer whose best sentence is this much less related to the question than the best
# evidence is off the point: the extractive answer follows it.
RELEVANCE_MARGIN = 0.2


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


# --- Retrieval: the one entry point -----------------------------------------------------------


def retrieve_sources(*, tenant: Any, query: str, access_groups: list[str] | None) -> list[Any]:
    """The tenant's knowledge for `query` (tenant and access filters always applied), with the
    best matching curated answer first. Shared by the chat and reply suggestions."""
    from apps.knowledge.selectors import chunk_search
    from apps.workspace.selectors import with_curated_first  # curated answers sit above

    chunks = chunk_search(
        tenant=tenant,
        query=query,
        access_groups=access_groups,
        limit=settings.ASSISTANT_RETRIEVAL_LIMIT,
        mode="hybrid",
    )
    return with_curated_first(
        tenant=tenant, query=query, chunks=chunks, access_groups=access_groups
    )


def _retrieve(request: Request, query: str) -> list[Any]:
    try:
        return retrieve_sources(
            tenant=request.tenant, query=query, access_groups=request.access_groups
        )
    except Exception:  # no sources is handled by the caller; the chat must go on
        logger.exception("retrieval failed for tenant %s", getattr(request.tenant, "pk", None))
        return []


def _embedder() -> Any:
    from apps.knowledge import runtime

    return runtime.get_embedder()


def encode(texts: Sequence[str]) -> np.ndarray:
    """Unit vectors for short texts with the query encoder (ONNX by default)."""
    return _embedder().encoder.encode(list(texts), batch_size=32)


def _gather(question: str, query: str, chunks: list[Any]) -> Evidence:
    vector = _embedder().embed_query(query)
    return evidence_mod.gather(question=question, chunks=chunks, query_vector=vector, encode=encode)


retrieve = db_async(_retrieve, thread_sensitive=False)
gather = db_async(_gather, thread_sensitive=False)


def embed_ahead(query: str) -> None:
    """Start embedding `query` (the embedder remembers it for retrieval and evidence)."""
    try:
        _embedder().embed_query(query)
    except Exception:  # retrieval embeds again and reports the failure
        logger.debug("embedding ahead failed", exc_info=True)


async def decide_action(request: Request, chunks: list[Any]) -> tuple[str, str]:
    """answer / clarify / handoff from a schema-constrained model call (ASSISTANT_DECISION=llm);
    answer when it fails."""
    import json

    try:
        value = await llm.chat_structured(
            prompts.decision_messages(
                company=request.company, question=request.question, sources=chunks
            ),
            name="support_decision",
            schema=prompts.DECISION_SCHEMA,
            timeout=settings.ASSISTANT_DECISION_TIMEOUT,
        )
    except (*llm.LLM_ERRORS, ValueError, json.JSONDecodeError) as exc:
        metrics.llm_error_from_exception(exc)
        logger.info("decision call failed (%s); answering", type(exc).__name__)
        return "answer", "decision unavailable"
    action = value.get("action")
    reason = str(value.get("reason") or "")[:200]
    if action not in {"answer", "clarify", "handoff"}:
        return "answer", "decision invalid"
    return action, reason


# --- Answerability ----------------------------------------------------------------------------


def answerability(found: Evidence) -> tuple[float, dict[str, Any]]:
    """How sure the knowledge answers the question, 0-1, and the signals it came from."""
    best = found.best
    if best is None:
        return 0.0, {"cosine": 0.0, "keywords": 0.0, "coverage": 0.0}
    cosine = min(1.0, max(0.0, (best.cosine - COSINE_FLOOR) / (COSINE_CEILING - COSINE_FLOOR)))
    keywords = min(1.0, best.keywords)
    score = WEIGHT_COSINE * cosine + WEIGHT_KEYWORDS * keywords + WEIGHT_COVERAGE * found.coverage
    score -= min(MISSING_MAX, MISSING_PENALTY * len(found.missing))
    if found.wanted_type_found is False:
        score -= NO_AMOUNT_PENALTY
    if best.kind == "curated":
        # An agent's answer to a question this similar (curated answers are only retrieved at
        # WORKSPACE_CURATED_MIN_SIMILARITY or above) answers it, whatever words the knowledge
        # lacks.
        matched = float(getattr(found.chunks[best.chunk], "score", 0.0) or 0.0)
        score = max(score, matched)
    signals: dict[str, Any] = {
        "cosine": round(best.cosine, 3),
        "keywords": round(best.keywords, 3),
        "coverage": round(found.coverage, 3),
    }
    if found.missing:
        signals["missing"] = found.missing[:5]
    if found.wanted_type_found is not None:
        signals["amount_found"] = found.wanted_type_found
    return round(max(0.0, score), 3), signals


def threshold_for(tenant: Any) -> float:
    value = getattr(tenant, "answer_threshold", None)
    return settings.ASSISTANT_ANSWERABILITY_THRESHOLD if value is None else float(value)


# --- Citations and rendering --------------------------------------------------------------------


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


# --- The flow ------------------------------------------------------------------------------------


async def _noop(_: str) -> None:
    return None


async def answer(
    request: Request,
    *,
    strategy: str | None = None,
    decision_mode: str | None = None,
    emit: Emit | None = None,
    query: str | None = None,
) -> EngineAnswer:
    """Answer `request.question`; every piece of visible text goes through `emit` as it is
    decided, and the result says what was shown and why."""
    strategy = strategy or settings.ASSISTANT_MODE
    if strategy == "llm":
        strategy = AnswerStrategy.GENERATIVE
    decision_mode = decision_mode or settings.ASSISTANT_DECISION
    run = _Run(request, strategy, emit or _noop)
    return await run.go(decision_mode, query)


class _Run:
    def __init__(self, request: Request, strategy: str, emit: Emit) -> None:
        self.request = request
        self.strategy = strategy
        self._emit = emit
        self.shown: list[str] = []
        self.first_token_ms: int | None = None
        self.chunks: list[Any] = []
        self.retrieval_ms: int | None = None
        self.query = request.question

    async def emit(self, text: str) -> None:
        if not text:
            return
        if self.first_token_ms is None:
            self.first_token_ms = self.request.elapsed_ms()
        self.shown.append(text)
        await self._emit(text)

    @property
    def text(self) -> str:
        return "".join(self.shown).strip()

    def result(self, **fields: Any) -> EngineAnswer:
        fields.setdefault("content", self.text)
        fields.setdefault("citations", [])
        fields.setdefault("strategy", self.strategy)
        fields.setdefault("answerability", None)
        return EngineAnswer(
            first_token_ms=self.first_token_ms,
            total_ms=self.request.elapsed_ms(),
            chunks=self.chunks,
            retrieval_ms=self.retrieval_ms,
            query=self.query,
            **fields,
        )

    # -- steps --

    async def go(self, decision_mode: str, query: str | None) -> EngineAnswer:
        request = self.request
        company = request.company or getattr(request.tenant, "name", "") or "our company"
        kind = scope.classify(request.question)
        if kind:
            text = {
                "greeting": prompts.GREETING_TEXT,
                "thanks": prompts.THANKS_TEXT,
                "off_topic": prompts.OFF_TOPIC_TEXT,
            }[kind].format(company=company)
            await self.emit(text)
            return self.result(
                decision=Decision.DECLINE if kind == "off_topic" else Decision.ANSWER,
                grounding={"outcome": "chitchat", "reason": kind, "dropped": [], "signals": {}},
            )

        if request.conversation is not None:
            # Order lookups and other actions answer from the company's systems, not articles.
            from apps.assistant import actions_turn

            handled = await actions_turn.try_action(self)
            if handled is not None:
                return handled

        self.query = query or request.question
        started = time.monotonic()
        ahead = asyncio.ensure_future(
            sync_to_async(embed_ahead, thread_sensitive=False)(self.query)
        )
        self.chunks = await retrieve(request, self.query)
        self.retrieval_ms = int((time.monotonic() - started) * 1000)
        with contextlib.suppress(Exception):
            await ahead
        if not self.chunks:
            return await self.unanswerable(0.0, {}, "nothing found")
        try:
            found = await gather(request.question, self.query, self.chunks)
        except Exception:  # evidence needs the embedder; without it, quote the top chunks
            logger.exception("scoring evidence failed")
            found = Evidence(question=request.question, chunks=self.chunks)
            found.units = [
                u for i, c in enumerate(self.chunks[:2]) for u in evidence_mod.units_of(c, i)
            ][:3]
        score, signals = answerability(found)
        if decision_mode == "answerability" and score < threshold_for(request.tenant):
            return await self.unanswerable(score, signals, "below the answerability threshold")
        if decision_mode == "llm" and self.strategy != AnswerStrategy.EXTRACTIVE:
            action, reason = await decide_action(request, self.chunks)
            if action == "handoff":
                return self.result(
                    content=prompts.MODEL_HANDOFF_TEXT,
                    decision=Decision.HANDOFF,
                    handoff_reason=HandoffReason.MODEL_DECISION,
                    answerability=score,
                    grounding={
                        "outcome": "handoff",
                        "reason": reason,
                        "dropped": [],
                        "signals": signals,
                    },
                )

        if self.strategy == AnswerStrategy.EXTRACTIVE:
            return await self.extractive(found, score, signals, outcome="extractive", reason="")
        if self.strategy == AnswerStrategy.GENERATIVE:
            return await self.generative(found, score, signals)
        return await self.grounded(found, score, signals)

    async def unanswerable(
        self, score: float, signals: dict[str, float], reason: str
    ) -> EngineAnswer:
        action = getattr(self.request.tenant, "unanswerable_action", "offer") or "offer"
        grounding_record = {
            "outcome": "declined",
            "reason": reason,
            "dropped": [],
            "signals": signals,
        }
        if action == "handoff":
            grounding_record["outcome"] = "handoff"
            return self.result(
                content=prompts.LOW_CONFIDENCE_TEXT,
                decision=Decision.HANDOFF,
                handoff_reason=HandoffReason.LOW_CONFIDENCE,
                answerability=score,
                grounding=grounding_record,
            )
        text = prompts.NOT_FOUND_TEXT + (prompts.OFFER_PERSON_TEXT if action == "offer" else "")
        await self.emit(text)
        return self.result(
            decision=Decision.DECLINE, answerability=score, grounding=grounding_record
        )

    async def extractive(
        self,
        found: Evidence,
        score: float,
        signals: dict[str, float],
        *,
        outcome: str,
        reason: str,
        citations: Citations | None = None,
        dropped: list[dict[str, str]] | None = None,
        after: str = "",
        extra: dict[str, Any] | None = None,
    ) -> EngineAnswer:
        citations = citations or Citations(self.chunks)
        hosts = trusted_hosts(self.request.tenant, self.chunks)
        units = evidence_mod.select(found)
        if after:
            # Only what the shown sentences did not already say.
            said = grounding.content_words(after)
            units = [
                u
                for u in units
                if len(grounding.content_words(u.plain) - said)
                >= max(1, len(grounding.content_words(u.plain)) // 3)
            ]
        pieces = extractive_text(units, citations, hosts)
        if after and pieces:
            pieces[0] = "\n\n" + pieces[0].lstrip()
        for piece in pieces:
            await self.emit(piece)
        return self.result(
            citations=citations.entries,
            decision=Decision.EXTRACTIVE,
            answerability=score,
            grounding={
                "outcome": outcome,
                "reason": reason,
                "dropped": dropped or [],
                "signals": signals,
            },
            **(extra or {}),
        )

    def _facts(self, found: Evidence) -> tuple[list[Unit], list[tuple[int, str]], Citations]:
        """The prompt's facts: top units within the budget, numbered by document."""
        budget = settings.ASSISTANT_PROMPT_BUDGET_TOKENS * 4
        units = evidence_mod.prompt_units(found, budget_chars=budget)
        numbering = Citations(self.chunks)
        facts = [(numbering.number_for(u.chunk, u.plain), u.plain) for u in units]
        return units, facts, numbering

    def _messages(self, facts: list[tuple[int, str]]) -> list[dict[str, str]]:
        request = self.request
        return prompts.facts_messages(
            company=request.company or getattr(request.tenant, "name", ""),
            language=request.language,
            history=request.history,
            question=request.question,
            facts=facts,
        )

    async def generative(
        self, found: Evidence, score: float, signals: dict[str, float]
    ) -> EngineAnswer:
        _units, facts, numbering = self._facts(found)
        messages = self._messages(facts)
        detector = prompts.LeakDetector(messages[0]["content"])
        text, usage, failure = "", (None, None), None
        leaked, pieces = False, 0
        try:
            async with (
                asyncio.timeout(settings.ASSISTANT_ANSWER_TIMEOUT),
                contextlib.aclosing(
                    llm.chat_stream(messages, max_tokens=self._max_tokens())
                ) as stream,
            ):
                async for piece in stream:
                    if piece.prompt_tokens is not None or piece.completion_tokens is not None:
                        usage = (piece.prompt_tokens, piece.completion_tokens)
                    if not piece.delta:
                        continue
                    text += piece.delta
                    pieces += 1
                    if detector.leaks_at_end(text):
                        leaked = True
                        break
                    await self.emit(piece.delta)
        except llm.LLM_ERRORS as exc:
            failure = exc
            metrics.llm_error_from_exception(exc)
            logger.warning("LLM failed after %d characters: %r", len(text), exc)
        if failure is not None and not self.shown:
            await self.emit(prompts.EXTRACTIVE_INTRO + "\n\n")
            return await self.extractive(
                found, score, signals, outcome="fell_back", reason="llm_error"
            )
        content = prompts.LEAK_REPLACEMENT if leaked or detector.leaks(text) else text
        cited = {n for n in grounding.citation_numbers(content)}
        entries = [c for c in numbering.entries if c["n"] in cited] or numbering.entries[:1]
        return self.result(
            content=content.strip(),
            citations=entries,
            decision=Decision.ANSWER,
            answerability=score,
            grounding={
                "outcome": "generative",
                "reason": "llm_error" if failure else "",
                "dropped": [],
                "signals": signals,
            },
            failed=failure is not None,
            **self._usage(usage, messages, pieces),
        )

    def _max_tokens(self) -> int:
        return min(settings.LLM_MAX_TOKENS, settings.ASSISTANT_ANSWER_MAX_TOKENS)

    def _usage(
        self, usage: tuple[int | None, int | None], messages: list[dict[str, str]], pieces: int
    ) -> dict[str, Any]:
        """Token counts from the server, or estimated (a streamed piece is about a token)."""
        prompt_tokens, completion_tokens = usage
        estimated = prompt_tokens is None or completion_tokens is None
        if estimated:
            prompt_tokens = sum(len(m["content"]) for m in messages) // 4
            completion_tokens = pieces
        return {
            "model": settings.LLM_MODEL,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "tokens_estimated": estimated,
        }

    async def grounded(
        self, found: Evidence, score: float, signals: dict[str, float]
    ) -> EngineAnswer:
        units, facts, _numbering = self._facts(found)
        messages = self._messages(facts)
        guard = grounding.Guard(
            sources=[u.plain for u in units],
            question=self.request.question,
            embed=encode,
        )
        check = sync_to_async(guard.check, thread_sensitive=False)
        citations = Citations(self.chunks)
        hosts = trusted_hosts(self.request.tenant, self.chunks)
        dropped: list[dict[str, str]] = []
        accepted: list[str] = []
        claims = 0
        buffer, raw, usage, failure = "", "", (None, None), None
        stop, pieces = False, 0

        async def consider(sentence: str) -> bool:
            """Show `sentence` if the guard passes it; False stops the answer."""
            nonlocal claims
            clean = grounding.strip_markup(sentence).strip()
            if not clean:
                return True
            verdict = await check(clean)
            if not verdict.ok:
                dropped.append(
                    {"sentence": clean[:300], "reason": verdict.reason, "detail": verdict.detail}
                )
                return False
            body = grounding.without_citations(clean)
            if verdict.claim and verdict.source is not None:
                n = citations.number_for(units[verdict.source].chunk, units[verdict.source].plain)
                body = f"{body.rstrip()} [{n}]"
                claims += 1
            body = evidence_mod.defuse_links(body, trusted_hosts=hosts)
            await self.emit((" " if accepted else "") + body)
            accepted.append(body)
            return True

        try:
            async with (
                asyncio.timeout(settings.ASSISTANT_ANSWER_TIMEOUT),
                contextlib.aclosing(
                    llm.chat_stream(messages, max_tokens=self._max_tokens())
                ) as stream,
            ):
                async for piece in stream:
                    if piece.prompt_tokens is not None or piece.completion_tokens is not None:
                        usage = (piece.prompt_tokens, piece.completion_tokens)
                    if not piece.delta:
                        continue
                    raw += piece.delta
                    pieces += 1
                    buffer += piece.delta
                    done, buffer = grounding.complete_sentences(buffer)
                    for sentence in done:
                        if not await consider(sentence):
                            stop = True
                            break
                    if stop:
                        break
            if not stop and buffer.strip():
                stop = not await consider(buffer)
        except llm.LLM_ERRORS as exc:
            failure = exc
            metrics.llm_error_from_exception(exc)
            logger.warning("LLM failed in a grounded answer after %d characters: %r", len(raw), exc)

        usage_fields = self._usage(usage, messages, pieces)
        reason = ""
        if failure is not None:
            reason = "llm_error"
        elif dropped:
            reason = dropped[0]["reason"]
        elif claims == 0:
            reason = "no_supported_claim"
        else:
            reason = await self._misses_the_point(found, accepted)
        guard_share = claims / (claims + len(dropped)) if (claims + len(dropped)) else 0.0
        final_score = round((1 - WEIGHT_GUARD) * score + WEIGHT_GUARD * guard_share, 3)
        if not reason:
            return self.result(
                content=self.text,
                citations=citations.entries,
                decision=Decision.ANSWER,
                answerability=final_score,
                grounding={"outcome": "grounded", "reason": "", "dropped": [], "signals": signals},
                **usage_fields,
            )
        # The model's answer failed: the extractive answer, after what was already shown.
        if not claims and self.shown:
            # Only claim-free filler was shown ("Sure!"): keep it, the answer follows it.
            pass
        return await self.extractive(
            found,
            final_score,
            signals,
            outcome="fell_back",
            reason=reason,
            citations=citations,
            dropped=dropped,
            after=self.text,
            extra=usage_fields,
        )

    async def _misses_the_point(self, found: Evidence, accepted: list[str]) -> str:
        """A reason when grounded sentences do not answer the question: they leave out a
        number of the best evidence ("1 year" without "or 500 charge cycles"; all of them when it
        has at most KEY_NUMBERS_ALL, one otherwise), leave out most of its words, or are about
        something else."""
        best = found.best
        if best is None:
            return ""
        key_numbers = grounding.extract_facts(best.plain).numbers
        said = grounding.extract_facts(" ".join(accepted)).numbers
        if key_numbers:
            needed = key_numbers if len(key_numbers) <= KEY_NUMBERS_ALL else set()
            if not key_numbers & said or not needed <= said:
                return "missing_key_fact"
        # Most of the best evidence's words must be in the answer ("by following the
        # instructions" says nothing the evidence says).
        key_words = grounding.content_words(best.plain) - grounding.GENERIC_WORDS
        said_words = grounding.content_words(" ".join(accepted))
        if key_words and len(key_words & said_words) / len(key_words) < KEY_WORDS_SHARE:
            return "missing_key_fact"

        def relevance() -> float:
            vectors = encode([grounding.without_citations(s) for s in accepted])
            question = _embedder().embed_query(self.request.question)
            return float(np.max(vectors @ question))

        value = await sync_to_async(relevance, thread_sensitive=False)()
        if value < best.cosine - RELEVANCE_MARGIN:
            return "off_the_point"
        return ""


async def answer_question(
    *,
    tenant: Any,
    question: str,
    history: Sequence[tuple[str, str]] = (),
    access_groups: list[str] | None = None,
    language: str = "",
    strategy: str | None = None,
    emit: Emit | None = None,
) -> EngineAnswer:
    """One answer for `question` in `tenant`, as the chat would give it (nothing stored)."""
    request = Request(
        tenant=tenant,
        question=question,
        company=getattr(tenant, "name", ""),
        history=list(history),
        access_groups=access_groups,
        language=language,
    )
    return await answer(request, strategy=strategy, emit=emit)
