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

This module holds the flow; its steps live in `retrieval`, `scoring` (answerability),
`citations` (and the extractive text) and `model_answers` (generative and grounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from apps.assistant import actions_turn, lexicon, prompts, scope
from apps.assistant import evidence as evidence_mod
from apps.assistant.answer_types import Emit, EngineAnswer, Request
from apps.assistant.citations import Citations, extractive_text, trusted_hosts
from apps.assistant.evidence import Evidence
from apps.assistant.model_answers import ModelAnswers
from apps.assistant.retrieval import embed_ahead, gather, retrieve
from apps.assistant.scoring import answerability, threshold_for
from apps.conversations.models import AnswerStrategy, Decision, HandoffReason
from apps.core import llm
from apps.core.observability import metrics

logger = logging.getLogger(__name__)


async def decide_action(request: Request, chunks: list[Any]) -> tuple[str, str]:
    """answer / clarify / handoff from a schema-constrained model call (ASSISTANT_DECISION=llm);
    answer when it fails."""
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


class _Run(ModelAnswers):
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
            said = lexicon.content_words(after)
            units = [
                u
                for u in units
                if len(lexicon.content_words(u.plain) - said)
                >= max(1, len(lexicon.content_words(u.plain)) // 3)
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
