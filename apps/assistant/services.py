"""The answer flow: condense → retrieve → decide → prompt → stream → persist.

`answer_message` runs on the consumer's event loop. Database work and retrieval run in worker
threads; every frame the customer (and any watching agent) sees goes through
`apps.core.realtime`, so they reach every process holding the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from apps.analytics import metrics
from apps.assistant import llm, prompts
from apps.conversations import services as conversation_services
from apps.conversations.models import (
    Conversation,
    Decision,
    HandoffReason,
    Message,
    MessageStatus,
)
from apps.conversations.selectors import history_for_prompt, message_wire
from apps.core import realtime
from apps.core.asyncdb import db_async

logger = logging.getLogger(__name__)

# --- Asking for a person ---------------------------------------------------------------------

_HUMAN = (
    r"(?:human|person|people|agent|operator|someone|somebody|representative|rep|staff|"
    r"real person|live agent|live person|customer service|support team|team member)"
)
HUMAN_REQUEST_PATTERNS = [
    rf"\b(?:talk|speak|chat|write)\s+(?:to|with)\s+(?:a|an|the|your|some|real|actual)?\s*"
    rf"(?:real\s+|actual\s+|live\s+)?{_HUMAN}\b",
    rf"\b(?:connect|transfer|put)\s+me\s+(?:to|with|through\s+to)\s+(?:a|an|the|your)?\s*"
    rf"(?:real\s+|live\s+)?{_HUMAN}\b",
    r"\b(?:i\s+)?(?:want|need|would\s+like|'d\s+like)\s+(?:a|an|to\s+talk\s+to\s+a)?\s*"
    r"(?:real\s+|actual\s+|live\s+)?(?:human|person|agent|operator|representative)\b",
    r"\b(?:human|live)\s+(?:agent|support|help)\b",
    r"\bare\s+you\s+a\s+(?:bot|robot)\b.*\b(?:human|person)\b",
    r"^\s*(?:agent|human|operator|representative)\s*[.!?]*\s*$",
    # German, French, Spanish, Dutch.
    r"\b(?:mit\s+einem|einen)\s+(?:menschen|mitarbeiter|mitarbeiterin|berater)\b",
    r"\bparler\s+(?:à|a|avec)\s+(?:un|une|quelqu'un)\s*(?:humain|personne|conseiller|agent)?\b",
    r"\bhablar\s+con\s+(?:un|una|alguien)\s*(?:humano|persona|agente|asesor)?\b",
    r"\b(?:met\s+een|een)\s+(?:mens|medewerker)\b",
]
_HUMAN_REQUEST = re.compile("|".join(f"(?:{p})" for p in HUMAN_REQUEST_PATTERNS), re.IGNORECASE)


def wants_human(text: str) -> bool:
    return bool(_HUMAN_REQUEST.search(text or ""))


# --- Context ---------------------------------------------------------------------------------


@dataclass
class Turn:
    conversation: Conversation
    question: str
    history: list[tuple[str, str]]
    company: str
    access_groups: list[str]
    started: float = field(default_factory=time.monotonic)

    @property
    def ids(self) -> dict[str, Any]:
        return {"tenant_id": self.conversation.tenant_id, "conversation_id": self.conversation.pk}

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


def _prepare(conversation: Conversation, message: Message, access_groups: list[str]) -> Turn | None:
    conversation = (
        Conversation.objects.for_tenant(conversation.tenant_id)
        .select_related("tenant")
        .get(pk=conversation.pk)
    )
    if not conversation.assistant_active:
        return None  # a person has the conversation; the assistant stays silent
    history = history_for_prompt(
        conversation=conversation, before_id=message.pk, turns=settings.ASSISTANT_HISTORY_TURNS
    )
    return Turn(
        conversation=conversation,
        question=message.content,
        history=[(m.role, m.content) for m in history],
        company=conversation.tenant.name,
        access_groups=list(access_groups),
    )


def _search(turn: Turn, query: str) -> list[Any]:
    from apps.knowledge.selectors import chunk_search
    from apps.workspace.selectors import with_curated_first

    chunks = chunk_search(
        tenant=turn.conversation.tenant,
        query=query,
        access_groups=turn.access_groups,
        limit=settings.ASSISTANT_RETRIEVAL_LIMIT,
        mode="hybrid",
    )
    # An agent's correction for a similar question comes first, as source [1].
    return with_curated_first(tenant=turn.conversation.tenant, query=query, chunks=chunks)


def _retrieve(turn: Turn, query: str) -> list[Any]:
    try:
        return _search(turn, query)
    except Exception:  # no sources is handled below; the chat must go on
        logger.exception("retrieval failed for conversation %s", turn.conversation.pk)
        return []


def _embed_ahead(query: str) -> None:
    """Embed the query while retrieval connects to the database and the answer's row is stored;
    the embedder remembers the vector (or makes retrieval wait for it), so it is made once."""
    from apps.knowledge import runtime

    try:
        runtime.get_embedder().embed_query(query)
    except Exception:  # retrieval embeds again and reports the failure
        logger.debug("embedding ahead failed", exc_info=True)


# Retrieval embeds the query (CPU-bound) and may wait for the embedded vector store that a
# worker holds; it runs in the loop's thread pool so the thread that every consumer's database
# work shares is never held meanwhile.
retrieve = db_async(_retrieve, thread_sensitive=False)
embed_ahead = sync_to_async(_embed_ahead, thread_sensitive=False)


async def retrieve_and_start(turn: Turn, query: str) -> tuple[list[Any], int, Message]:
    """Sources for `query`, retrieval's wall time (ms), and the answer's new row, all at once."""
    started = time.monotonic()

    async def sources() -> tuple[list[Any], int]:
        chunks = await retrieve(turn, query)
        return chunks, int((time.monotonic() - started) * 1000)

    _, reply, (chunks, retrieval_ms) = await asyncio.gather(
        embed_ahead(query),
        start_message(conversation=turn.conversation, model=settings.LLM_MODEL),
        sources(),
    )
    return chunks, retrieval_ms, reply


def retrieval_record(chunks: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "chunk_id": str(c.chunk_id),
            "document_id": str(c.document_id),
            "score": round(float(c.score), 6),
            "found_by": list(c.found_by) if not isinstance(c.found_by, str) else [c.found_by],
            "rank": c.rank,
        }
        for c in chunks
    ]


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def citation(n: int, chunk: Any) -> dict[str, Any]:
    return {
        "n": n,
        "title": chunk.title,
        "url": chunk.url or None,
        "snippet": _snippet(chunk.text),
        "chunk_id": str(chunk.chunk_id),
        "document_id": str(chunk.document_id),
        "score": round(float(chunk.score), 6),
    }


_MARKER = re.compile(r"\[(\d{1,2}(?:\s*,\s*\d{1,2})*)\]")


def citations_for(answer: str, sources: list[Any], *, fallback: int = 3) -> list[dict[str, Any]]:
    """The sources the answer cites with [n] markers; the top few sources when it cites none."""
    cited: list[int] = []
    for group in _MARKER.findall(answer):
        for number in group.split(","):
            n = int(number)
            if 1 <= n <= len(sources) and n not in cited:
                cited.append(n)
    if not cited:
        cited = list(range(1, min(fallback, len(sources)) + 1))
    return [citation(n, sources[n - 1]) for n in sorted(cited)]


def is_confident(chunks: list[Any]) -> bool:
    return bool(chunks) and max(float(c.score) for c in chunks) >= settings.ASSISTANT_MIN_SCORE


# --- Persisting and pushing ---------------------------------------------------------------------


def _finish_and_push(message: Message, **fields: Any) -> dict[str, Any]:
    message = conversation_services.assistant_message_finish(message=message, **fields)
    metrics.observe_answer_message(message)
    wire = message_wire(message)
    realtime.chat_event_send(
        tenant_id=message.tenant_id,
        conversation_id=message.conversation_id,
        event={"type": "message_done", "message": wire},
    )
    return wire


finish_and_push = db_async(_finish_and_push)


def _hand_off(
    turn: Turn, message: Message, *, reason: str, text: str, **fields: Any
) -> dict[str, Any]:
    """Tell the customer why a person takes over, then put the conversation in the queue."""
    wire = _finish_and_push(
        message,
        content=text,
        status=MessageStatus.COMPLETE,
        decision=Decision.HANDOFF,
        model="",
        prompt_version=prompts.PROMPT_VERSION,
        total_ms=turn.elapsed_ms(),
        **fields,
    )
    conversation_services.handoff_request(conversation=turn.conversation, reason=reason)
    return wire


hand_off = db_async(_hand_off)
prepare = db_async(_prepare)
save_partial = db_async(conversation_services.assistant_message_save_partial)
post_system = db_async(conversation_services.message_post_system)
start_message = db_async(conversation_services.assistant_message_start)


# --- LLM steps ------------------------------------------------------------------------------------


async def condense_question(turn: Turn) -> str:
    """A standalone question for retrieval; the raw question when there is no history or the
    model fails or answers with something unusable."""
    if not turn.history:
        return turn.question
    try:
        text = await llm.chat_complete(
            prompts.condense_messages(history=turn.history, question=turn.question),
            max_tokens=80,
            timeout=settings.ASSISTANT_CONDENSE_TIMEOUT,
        )
    except llm.LLM_ERRORS as exc:
        metrics.llm_error_from_exception(exc)
        logger.info("condensing failed (%s); using the raw question", type(exc).__name__)
        return turn.question
    text = text.strip().strip('"').strip()
    if not text or len(text) > 4 * len(turn.question) + 200:
        return turn.question
    return text


async def decide(turn: Turn, chunks: list[Any]) -> tuple[str, str]:
    """answer / clarify / handoff from a schema-constrained model call; answer when it fails."""
    try:
        value = await llm.chat_structured(
            prompts.decision_messages(company=turn.company, question=turn.question, sources=chunks),
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


def extractive_content(chunks: list[Any], *, passages: int = 3) -> tuple[str, list[dict]]:
    """The best passages, quoted, with their citations: an answer that needs no model."""
    lines = [prompts.EXTRACTIVE_INTRO, ""]
    used = chunks[:passages]
    for n, chunk in enumerate(used, start=1):
        passage = _snippet(chunk.text, 500)
        lines.append(f"**{chunk.title}** [{n}]")
        lines.extend(f"> {line}" for line in passage.splitlines() or [""])
        lines.append("")
    return "\n".join(lines).strip(), [citation(n, c) for n, c in enumerate(used, start=1)]


# --- The flow -------------------------------------------------------------------------------------


async def answer_message(
    *, conversation: Conversation, message: Message, access_groups: list[str], language: str = ""
) -> dict[str, Any] | None:
    """Answer the customer's `message`; returns the assistant's final message (wire form, also
    for a handoff notice) or None when it stays silent (a person has the conversation)."""
    turn = await prepare(conversation, message, access_groups)
    if turn is None:
        return None
    language = language or turn.conversation.language
    await realtime.chat_typing_send_async(**turn.ids, role="assistant", active=True)
    try:
        return await _answer(turn, language)
    finally:
        await realtime.chat_typing_send_async(**turn.ids, role="assistant", active=False)


async def _answer(turn: Turn, language: str) -> dict[str, Any] | None:
    mode = settings.ASSISTANT_MODE
    if mode == "echo":
        # Load tests of the websocket layer: no retrieval, no model, same persistence and frames.
        reply = await start_message(conversation=turn.conversation, model="echo")
        return await finish_and_push(
            reply,
            content=f"Echo: {turn.question}",
            status=MessageStatus.COMPLETE,
            decision=Decision.EXTRACTIVE,
            total_ms=turn.elapsed_ms(),
        )

    if wants_human(turn.question):
        reply = await start_message(conversation=turn.conversation, model="")
        return await hand_off(
            turn,
            reply,
            reason=HandoffReason.CUSTOMER_REQUEST,
            text=prompts.CUSTOMER_REQUEST_TEXT,
        )

    query = await condense_question(turn) if mode == "llm" else turn.question
    chunks, retrieval_ms, reply = await retrieve_and_start(turn, query)
    common = {"retrieval_ms": retrieval_ms, "retrieval": retrieval_record(chunks)}

    if not is_confident(chunks):
        return await hand_off(
            turn,
            reply,
            reason=HandoffReason.LOW_CONFIDENCE,
            text=prompts.LOW_CONFIDENCE_TEXT,
            **common,
        )
    if mode == "extractive":
        return await _extractive(turn, reply, chunks, common)

    action = "answer"
    if settings.ASSISTANT_DECISION == "llm":
        action, reason = await decide(turn, chunks)
        if action == "handoff":
            logger.info("model handed off conversation %s: %s", turn.conversation.pk, reason)
            return await hand_off(
                turn,
                reply,
                reason=HandoffReason.MODEL_DECISION,
                text=prompts.MODEL_HANDOFF_TEXT,
                **common,
            )

    messages = prompts.build_answer_messages(
        company=turn.company,
        language=language,
        history=turn.history,
        question=turn.question,
        sources=chunks,
        clarify=action == "clarify",
    )
    return await _stream(
        turn,
        reply,
        messages,
        chunks,
        decision=Decision.CLARIFY if action == "clarify" else Decision.ANSWER,
        common=common,
    )


async def _extractive(
    turn: Turn, reply: Message, chunks: list[Any], common: dict[str, Any]
) -> dict[str, Any] | None:
    if not chunks:
        return await hand_off(
            turn,
            reply,
            reason=HandoffReason.LLM_UNAVAILABLE,
            text=prompts.EXTRACTIVE_NOTHING,
            **common,
        )
    content, cites = extractive_content(chunks)
    await realtime.chat_token_send_async(**turn.ids, message_id=reply.pk, delta=content)
    return await finish_and_push(
        reply,
        content=content,
        citations=cites,
        status=MessageStatus.COMPLETE,
        decision=Decision.EXTRACTIVE,
        model="",
        prompt_version=prompts.PROMPT_VERSION,
        total_ms=turn.elapsed_ms(),
        **common,
    )


PARTIAL_SAVE_SECONDS = 2.0


async def _stream(
    turn: Turn,
    reply: Message,
    messages: list[dict[str, str]],
    chunks: list[Any],
    *,
    decision: str,
    common: dict[str, Any],
) -> dict[str, Any] | None:
    detector = prompts.LeakDetector(messages[0]["content"])
    parts: list[str] = []
    text = ""
    first_token_ms: int | None = None
    usage: tuple[int | None, int | None] = (None, None)
    leaked = False
    failure: BaseException | None = None
    last_save = time.monotonic()
    try:
        async with (
            asyncio.timeout(settings.ASSISTANT_ANSWER_TIMEOUT),
            contextlib.aclosing(llm.chat_stream(messages)) as stream,
        ):
            async for piece in stream:
                if piece.prompt_tokens is not None or piece.completion_tokens is not None:
                    usage = (piece.prompt_tokens, piece.completion_tokens)
                if not piece.delta:
                    continue
                if first_token_ms is None:
                    first_token_ms = turn.elapsed_ms()
                parts.append(piece.delta)
                text += piece.delta
                if detector.leaks_at_end(text):
                    leaked = True
                    break
                await realtime.chat_token_send_async(
                    **turn.ids, message_id=reply.pk, delta=piece.delta
                )
                if time.monotonic() - last_save > PARTIAL_SAVE_SECONDS:
                    last_save = time.monotonic()
                    await save_partial(message=reply, content=text)
    except asyncio.CancelledError:
        # The process is shutting down: keep what was said, then let the cancellation go on.
        await asyncio.shield(
            finish_and_push(reply, content=text, status=MessageStatus.FAILED, decision=decision)
        )
        raise
    except llm.LLM_ERRORS as exc:
        failure = exc
        metrics.llm_error_from_exception(exc)
        logger.warning(
            "LLM failed for conversation %s after %d pieces: %r",
            turn.conversation.pk,
            len(parts),
            exc,
        )

    if failure is not None and not parts:
        # Nothing reached the customer: answer from the help center without the model.
        return await _extractive(turn, reply, chunks, common)

    prompt_tokens, completion_tokens = usage
    estimated = prompt_tokens is None or completion_tokens is None
    if estimated:
        prompt_tokens = sum(len(m["content"]) for m in messages) // 4
        completion_tokens = len(parts)
    if leaked or detector.leaks(text):
        text = prompts.LEAK_REPLACEMENT
    fields = {
        "content": text,
        "citations": [] if decision == Decision.CLARIFY else citations_for(text, chunks),
        "status": MessageStatus.FAILED if failure is not None else MessageStatus.COMPLETE,
        "decision": decision,
        "model": settings.LLM_MODEL,
        "prompt_version": prompts.PROMPT_VERSION,
        "first_token_ms": first_token_ms,
        "total_ms": turn.elapsed_ms(),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "tokens_estimated": estimated,
        **common,
    }
    wire = await finish_and_push(reply, **fields)
    if failure is not None:
        await post_system(conversation=turn.conversation, content=prompts.INTERRUPTED_TEXT)
    return wire
