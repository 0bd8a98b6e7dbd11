"""The chat's answer flow: prepare → (hand off on request) → condense → the answer engine →
persist and push.

`answer_message` runs on the consumer's event loop. The engine (apps/assistant/engine.py)
decides what the customer sees; this module stores the answer's row while retrieval runs,
streams every visible piece through `apps.core.realtime` (so it reaches every process holding
the conversation), saves partial text as it goes, and finishes, hands off or records a failure.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from apps.assistant import answer_types, engine, prompts, retrieval
from apps.assistant.delivery import message_finish_push
from apps.conversations import services as conversation_services
from apps.conversations.models import (
    AnswerStrategy,
    Conversation,
    Decision,
    HandoffReason,
    Message,
    MessageStatus,
)
from apps.conversations.selectors import history_for_prompt
from apps.core import llm, realtime
from apps.core.asyncdb import db_async
from apps.core.observability import metrics

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
    message: Message | None = None  # the customer's message (an action's audit points to it)

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
        message=message,
    )


def retrieval_record(chunks: list[Any]) -> list[dict[str, Any]]:
    """Every retrieved chunk, used or not, as stored on the answer."""
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


# --- Persisting and pushing ---------------------------------------------------------------------


finish_and_push = db_async(message_finish_push)


def _hand_off(
    turn: Turn, message: Message, *, reason: str, text: str, **fields: Any
) -> dict[str, Any]:
    """Tell the customer why a person takes over, then put the conversation in the queue."""
    wire = message_finish_push(
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


# The consumer starts embedding the question as it arrives (the engine then finds it ready).
embed_ahead = sync_to_async(retrieval.embed_ahead, thread_sensitive=False)


def _strategy_name(mode: str) -> str:
    return AnswerStrategy.GENERATIVE if mode == "llm" else mode


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
    mode = _strategy_name(settings.ASSISTANT_MODE)
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

    query = await condense_question(turn) if mode != AnswerStrategy.EXTRACTIVE else turn.question
    # The answer's row is stored while the engine retrieves; frames carry its id.
    reply_task = asyncio.ensure_future(
        start_message(conversation=turn.conversation, model=settings.LLM_MODEL)
    )
    shown: list[str] = []
    last_save = time.monotonic()

    async def emit(delta: str) -> None:
        nonlocal last_save
        reply = await reply_task
        shown.append(delta)
        await realtime.chat_token_send_async(**turn.ids, message_id=reply.seq, delta=delta)
        if time.monotonic() - last_save > PARTIAL_SAVE_SECONDS:
            last_save = time.monotonic()
            await save_partial(message=reply, content="".join(shown))

    request = answer_types.Request(
        tenant=turn.conversation.tenant,
        question=turn.question,
        company=turn.company,
        history=turn.history,
        access_groups=turn.access_groups,
        language=language,
        started=turn.started,
        conversation=turn.conversation,
        message=turn.message,
    )
    try:
        result = await engine.answer(request, strategy=mode, emit=emit, query=query)
    except asyncio.CancelledError:
        # The process is shutting down: keep what was said, then let the cancellation go on.
        reply = await asyncio.shield(reply_task)
        await asyncio.shield(
            finish_and_push(
                reply,
                content="".join(shown),
                status=MessageStatus.FAILED,
                decision=Decision.ANSWER,
                strategy=mode,
            )
        )
        raise
    reply = await reply_task
    common = {
        "retrieval_ms": result.retrieval_ms,
        "retrieval": retrieval_record(result.chunks),
        "strategy": result.strategy,
        "answerability": result.answerability,
        "grounding": result.grounding,
    }
    if result.decision == Decision.HANDOFF:
        return await hand_off(
            turn, reply, reason=result.handoff_reason, text=result.content, **common
        )
    wire = await finish_and_push(
        reply,
        content=result.content,
        citations=result.citations,
        status=MessageStatus.FAILED if result.failed else MessageStatus.COMPLETE,
        decision=result.decision,
        model=result.model,
        prompt_version=prompts.PROMPT_VERSION,
        first_token_ms=result.first_token_ms,
        total_ms=turn.elapsed_ms(),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        tokens_estimated=result.tokens_estimated,
        **common,
    )
    if result.failed:
        await post_system(conversation=turn.conversation, content=prompts.INTERRUPTED_TEXT)
    return wire


PARTIAL_SAVE_SECONDS = 2.0
