"""The answers the model writes, as steps of the engine's run (engine.py `_Run`): generative
(the model's answer over the top evidence, unchecked) and grounded (the model's answer through
the guard, sentence by sentence, falling back to the extractive answer when it fails or misses
the point); the prompt's facts and the token accounting they share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings

from apps.assistant import answer_text, grounding, lexicon, prompts
from apps.assistant import evidence as evidence_mod
from apps.assistant.answer_types import EngineAnswer, Request
from apps.assistant.citations import Citations, trusted_hosts
from apps.assistant.evidence import Evidence, Unit
from apps.assistant.facts import extract_facts
from apps.assistant.retrieval import embedder, encode
from apps.conversations.models import Decision
from apps.core import llm
from apps.core.observability import metrics

logger = logging.getLogger(__name__)

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
class Streamed:
    """What one streamed model answer produced."""

    text: str = ""
    pieces: int = 0
    usage: tuple[int | None, int | None] = (None, None)
    failure: Exception | None = None


class ModelAnswers:
    """The model-written strategies of `_Run`, which provides `request`, `chunks`, `shown`,
    `text`, `emit()`, `result()` and `extractive()` (the fallback)."""

    request: Request
    chunks: list[Any]
    shown: list[str]

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
        leaked = False

        async def show(delta: str, text: str) -> bool:
            nonlocal leaked
            if detector.leaks_at_end(text):
                leaked = True
                return False
            await self.emit(delta)
            return True

        streamed = await self._stream(messages, show)
        text, failure = streamed.text, streamed.failure
        if failure is not None:
            logger.warning("LLM failed after %d characters: %r", len(text), failure)
            if not self.shown:
                await self.emit(prompts.EXTRACTIVE_INTRO + "\n\n")
                return await self.extractive(
                    found, score, signals, outcome="fell_back", reason="llm_error"
                )
        content = prompts.LEAK_REPLACEMENT if leaked or detector.leaks(text) else text
        cited = {n for n in answer_text.citation_numbers(content)}
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
            **self._usage(streamed.usage, messages, streamed.pieces),
        )

    async def _stream(
        self, messages: list[dict[str, str]], on_delta: Callable[[str, str], Awaitable[bool]]
    ) -> Streamed:
        """Stream the model's answer into `on_delta(delta, text so far)` until it returns False,
        all within `ASSISTANT_ANSWER_TIMEOUT`. An LLM error (the deadline included) ends the
        stream and is returned in `failure`, not raised.

        A callback rather than an async generator on purpose: the deadline's scope must enclose
        the consumer's own awaits (`emit`), or a deadline hitting while the consumer awaits
        would cancel the task outside `asyncio.timeout` and never become a TimeoutError.
        """
        out = Streamed()
        try:
            async with (
                asyncio.timeout(settings.ASSISTANT_ANSWER_TIMEOUT),
                contextlib.aclosing(
                    llm.chat_stream(messages, max_tokens=self._max_tokens())
                ) as stream,
            ):
                async for piece in stream:
                    if piece.prompt_tokens is not None or piece.completion_tokens is not None:
                        out.usage = (piece.prompt_tokens, piece.completion_tokens)
                    if not piece.delta:
                        continue
                    out.text += piece.delta
                    out.pieces += 1
                    if not await on_delta(piece.delta, out.text):
                        break
        except llm.LLM_ERRORS as exc:
            out.failure = exc
            metrics.llm_error_from_exception(exc)
        return out

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
            focus=[u.plain for u in evidence_mod.select(found)],
        )
        check = sync_to_async(guard.check, thread_sensitive=False)
        citations = Citations(self.chunks)
        hosts = trusted_hosts(self.request.tenant, self.chunks)
        dropped: list[dict[str, str]] = []
        accepted: list[str] = []
        claims = 0
        buffer, stop = "", False

        async def consider(sentence: str) -> bool:
            """Show `sentence` if the guard passes it; False stops the answer."""
            nonlocal claims
            clean = answer_text.strip_markup(sentence).strip()
            if not clean:
                return True
            verdict = await check(clean)
            if not verdict.ok:
                dropped.append(
                    {"sentence": clean[:300], "reason": verdict.reason, "detail": verdict.detail}
                )
                return False
            body = answer_text.without_citations(clean)
            if verdict.claim and verdict.source is not None:
                n = citations.number_for(units[verdict.source].chunk, units[verdict.source].plain)
                body = f"{body.rstrip()} [{n}]"
                claims += 1
            body = evidence_mod.defuse_links(body, trusted_hosts=hosts)
            await self.emit((" " if accepted else "") + body)
            accepted.append(body)
            return True

        async def sentences(delta: str, _text: str) -> bool:
            """Pass each sentence the stream completes to `consider`; False stops the stream."""
            nonlocal buffer, stop
            buffer += delta
            done, buffer = answer_text.complete_sentences(buffer)
            for sentence in done:
                if not await consider(sentence):
                    stop = True
                    return False
            return True

        streamed = await self._stream(messages, sentences)
        failure = streamed.failure
        if failure is None and not stop and buffer.strip():
            # The deadline does not cover the last sentence's check; it is no model call.
            stop = not await consider(buffer)
        if failure is not None:
            logger.warning(
                "LLM failed in a grounded answer after %d characters: %r",
                len(streamed.text),
                failure,
            )

        usage_fields = self._usage(streamed.usage, messages, streamed.pieces)
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
        key_numbers = extract_facts(best.plain).numbers
        said = extract_facts(" ".join(accepted)).numbers
        if key_numbers:
            needed = key_numbers if len(key_numbers) <= KEY_NUMBERS_ALL else set()
            if not key_numbers & said or not needed <= said:
                return "missing_key_fact"
        # Most of the best evidence's words must be in the answer ("by following the
        # instructions" says nothing the evidence says).
        key_words = lexicon.content_words(best.plain) - lexicon.GENERIC_WORDS
        said_words = lexicon.content_words(" ".join(accepted))
        if key_words and len(key_words & said_words) / len(key_words) < KEY_WORDS_SHARE:
            return "missing_key_fact"

        def relevance() -> float:
            vectors = encode([answer_text.without_citations(s) for s in accepted])
            question = embedder().embed_query(self.request.question)
            return float(np.max(vectors @ question))

        value = await sync_to_async(relevance, thread_sensitive=False)()
        if value < best.cosine - RELEVANCE_MARGIN:
            return "off_the_point"
        return ""
