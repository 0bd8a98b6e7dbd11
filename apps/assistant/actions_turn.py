"""A chat turn that needs an action (order status, cancel an order) instead of an article.

    plan (deterministic match, identity binding, parameters; the model only fills what the
    matcher cannot, and only with values written in the question)
      → ask for a missing parameter ("What is your order number?")
      → or ask the customer to confirm an action that changes data (a `confirm` frame runs it)
      → or run it now: the live result is the answer's cited source

The engine calls `try_action` before retrieval; the websocket consumer calls `confirm` for a
confirm frame. The HTTP call itself, its audit and its event are apps/actions' business.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from apps.actions import matching, selectors, services
from apps.actions.models import Action, ActionCall, CallStatus
from apps.actions.runner import Outcome
from apps.assistant import prompts, retrieval
from apps.assistant.action_texts import (
    CONFIRM_TEXT,
    DECLINED_TEXT,
    FAILED_TEXT,
    SIGN_IN_TEXT,
    citation,
    failure_text,
    params_text,
    result_text,
)
from apps.assistant.delivery import message_finish_push
from apps.conversations import services as conversation_services
from apps.conversations.models import Decision, Message, MessageStatus
from apps.core import llm
from apps.core.asyncdb import db_async

logger = logging.getLogger(__name__)


@dataclass
class Plan:
    """What the turn does: ask, confirm, run, or refuse."""

    kind: str  # ask | confirm | run | sign_in
    action: Action
    params: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    score: float = 0.0
    filled_by: str = "match"  # match | llm | follow_up
    call: ActionCall | None = None
    continued: ActionCall | None = None


# --- Planning (sync, in a worker thread) ---------------------------------------------------------


def _encode(texts: list[str]) -> Any:
    return retrieval.encode(texts)


def plan_for(
    *,
    tenant: Any,
    question: str,
    conversation: Any = None,
    identity: dict[str, Any] | None = None,
    encode: Any = _encode,
) -> Plan | None:
    """What to do about `question`, or None when it needs no action (articles answer it)."""
    actions = selectors.action_list_active(tenant=tenant)
    if not actions:
        return None
    continued = None
    if conversation is not None:
        waiting = selectors.call_waiting(
            conversation=conversation, status=CallStatus.NEEDS_PARAMETERS
        )
        if waiting is not None and waiting.action is not None and waiting.action.is_active:
            params = {**services.call_pending_params(waiting)}
            params.update(matching.extract_params(waiting.action, question))
            if not matching.missing(waiting.action, params):
                return _finish_plan(
                    Plan("run", waiting.action, params, filled_by="follow_up", continued=waiting),
                    identity,
                )
            continued = waiting
    choice = matching.choose(question, actions, encode)
    if choice is None:
        return None
    plan = Plan("run", choice.action, dict(choice.params), choice.missing, choice.score)
    plan.continued = continued
    return _finish_plan(plan, identity)


def _finish_plan(plan: Plan, identity: dict[str, Any] | None) -> Plan:
    action = plan.action
    try:
        plan.params.update(matching.bind_identity(action, identity))
    except matching.IdentityMissing:
        plan.kind = "sign_in"
        return plan
    plan.missing = matching.missing(action, plan.params)
    if plan.missing:
        plan.kind = "ask"
    elif matching.validation_errors(action, plan.params):
        plan.missing = [n for n in matching.required(action) if n in matching.fillable(action)]
        plan.kind = "ask"
    elif action.changes_data:
        plan.kind = "confirm"
    return plan


def _record(plan: Plan, conversation: Any, message: Any) -> ActionCall | None:
    """The audit row for a plan that does not run now."""
    if plan.continued is not None:
        services.call_supersede(call=plan.continued)
    if conversation is None:
        return None
    status = {
        "ask": CallStatus.NEEDS_PARAMETERS,
        "confirm": CallStatus.PENDING_CONFIRMATION,
        "sign_in": CallStatus.REFUSED,
    }[plan.kind]
    return services.call_open(
        action=plan.action,
        conversation=conversation,
        message=message,
        status=status,
        params=plan.params,
        error="the action is bound to a signed-in customer" if plan.kind == "sign_in" else "",
    )


def _run(plan: Plan, conversation: Any, message: Any) -> tuple[ActionCall, Outcome]:
    if plan.continued is not None:
        services.call_supersede(call=plan.continued)
    return services.call_execute(
        action=plan.action, params=plan.params, conversation=conversation, message=message
    )


def _plan_in_thread(request: Any) -> Plan | None:
    conversation = request.conversation
    identity = selectors.identity_of(conversation) if conversation is not None else None
    return plan_for(
        tenant=request.tenant,
        question=request.question,
        conversation=conversation,
        identity=identity,
    )


plan_async = db_async(_plan_in_thread, thread_sensitive=False)
record_async = db_async(_record)
run_async = db_async(_run, thread_sensitive=False)


# --- The model, only for parameters the matcher cannot find --------------------------------------


def _fill_schema(action: Action, names: list[str]) -> dict[str, Any]:
    props = matching.properties(action)
    keep = ("type", "pattern", "enum", "format", "minimum", "maximum", "maxLength")
    return {
        "type": "object",
        "properties": {n: {k: v for k, v in props[n].items() if k in keep} for n in names},
        "additionalProperties": False,
    }


def _fill_messages(action: Action, question: str, names: list[str]) -> list[dict[str, str]]:
    wanted = ", ".join(f"{n} ({matching.label(action, n)})" for n in names)
    return [
        {
            "role": "system",
            "content": (
                f"Extract parameters for the action “{action.title}”: {action.description}\n"
                f"Parameters: {wanted}. Copy values exactly as the customer wrote them; leave "
                "out any parameter the message does not state. Answer with JSON only."
            ),
        },
        {"role": "user", "content": question},
    ]


async def llm_fill(action: Action, question: str, names: list[str]) -> dict[str, Any]:
    """Values for `names` from the model, kept only when they fit the schema and are written
    in the question (a weak model invents order numbers)."""
    mode = settings.ACTIONS_LLM_FILL
    if mode == "off" or not names:
        return {}
    schema = _fill_schema(action, names)
    messages = _fill_messages(action, question, names)
    try:
        if mode == "tools":
            response = await llm.client().chat.completions.create(
                model=settings.LLM_MODEL,
                messages=messages,
                tools=[
                    {
                        "type": "function",
                        "function": {
                            "name": action.name,
                            "description": action.description[:1000],
                            "parameters": schema,
                        },
                    }
                ],
                tool_choice={"type": "function", "function": {"name": action.name}},
                max_tokens=96,
                temperature=0.0,
                timeout=settings.ACTIONS_LLM_TIMEOUT,
            )
            calls = response.choices[0].message.tool_calls or []
            value = json.loads(calls[0].function.arguments) if calls else {}
        else:
            value = await llm.chat_structured(
                messages,
                name="action_parameters",
                schema=schema,
                max_tokens=96,
                timeout=settings.ACTIONS_LLM_TIMEOUT,
            )
    except (*llm.LLM_ERRORS, ValueError, IndexError, AttributeError) as exc:
        logger.info("filling parameters with the model failed (%s)", type(exc).__name__)
        return {}
    if not isinstance(value, dict):
        return {}
    props = matching.properties(action)
    lowered = question.lower()
    kept = {}
    for name in names:
        if name not in value or value[name] in (None, ""):
            continue
        candidate = value[name]
        if str(candidate).lower() not in lowered:
            continue
        if matching._value_fits(props[name], candidate):
            kept[name] = candidate
    return kept


# --- The turn ------------------------------------------------------------------------------------


def _grounding(plan: Plan, outcome: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "outcome": "action",
        "reason": reason,
        "dropped": [],
        "signals": {
            "action": plan.action.name,
            "score": plan.score,
            "filled_by": plan.filled_by,
            "step": outcome,
        },
        **extra,
    }


async def try_action(run: Any) -> Any | None:
    """Handle the run's question with an action; None when no action is for it.

    `run` is the engine's `_Run` (its request, `emit` and `result`)."""
    request = run.request
    try:
        plan = await plan_async(request)
    except Exception:  # the articles can still answer
        logger.exception("planning an action failed")
        return None
    if plan is None:
        return None
    if plan.kind == "ask" and plan.missing:
        filled = await llm_fill(plan.action, request.question, plan.missing)
        if filled:
            plan.params.update(filled)
            plan.filled_by = "llm"
            plan.missing = [n for n in plan.missing if n not in filled]
            if not plan.missing and not matching.validation_errors(plan.action, plan.params):
                plan.kind = "confirm" if plan.action.changes_data else "run"
    conversation, message = request.conversation, getattr(request, "message", None)

    if plan.kind == "sign_in":
        await record_async(plan, conversation, message)
        await run.emit(SIGN_IN_TEXT + prompts.OFFER_PERSON_TEXT)
        return run.result(
            decision=Decision.DECLINE, grounding=_grounding(plan, "sign_in", "identity")
        )
    if plan.kind == "ask":
        await record_async(plan, conversation, message)
        await run.emit(matching.ask_text(plan.action, plan.missing))
        return run.result(
            decision=Decision.CLARIFY,
            grounding=_grounding(plan, "ask", "missing_parameters", missing=plan.missing),
        )
    if plan.kind == "confirm":
        call = await record_async(plan, conversation, message)
        await run.emit(
            CONFIRM_TEXT.format(
                title=plan.action.title, params=params_text(plan.action, plan.params)
            )
        )
        # Without a conversation (an evaluation) there is nothing to confirm with.
        extra = (
            {"action": {"call_id": str(call.public_id), "title": plan.action.title}}
            if call is not None
            else {}
        )
        return run.result(
            decision=Decision.ANSWER,
            grounding=_grounding(plan, "confirm", "needs_confirmation", **extra),
        )
    call, outcome = await run_async(plan, conversation, message)
    return await _answer_outcome(run, plan, call, outcome)


async def _answer_outcome(run: Any, plan: Plan, call: ActionCall, outcome: Outcome) -> Any:
    if outcome.ok:
        text = result_text(plan.action, plan.params, outcome.shown)
        await run.emit(text)
        return run.result(
            decision=Decision.ANSWER,
            citations=[citation(plan.action, call, plan.params, text)],
            answerability=1.0,
            grounding=_grounding(plan, "ran", "", call_id=str(call.public_id)),
        )
    await run.emit(failure_text(plan.action, plan.params, outcome))
    return run.result(
        decision=Decision.DECLINE,
        grounding=_grounding(plan, "ran", outcome.kind, call_id=str(call.public_id)),
    )


# --- Confirmation (the widget's confirm frame) ---------------------------------------------------


def _confirm_sync(
    *, conversation: Any, call_id: str, accept: bool, by: str
) -> tuple[str, ActionCall | None, Outcome | None, dict[str, Any]]:
    """('ran' | 'declined' | 'duplicate' | 'unknown', call, outcome, params)."""
    if not accept:
        if services.call_decline(conversation=conversation, public_id=call_id, by=by):
            return "declined", None, None, {}
        existing = selectors.call_get(conversation=conversation, public_id=call_id)
        return ("duplicate" if existing else "unknown"), existing, None, {}
    call = services.call_claim(conversation=conversation, public_id=call_id, confirmed_by=by)
    if call is None:
        existing = selectors.call_get(conversation=conversation, public_id=call_id)
        return ("duplicate" if existing else "unknown"), existing, None, {}
    params = services.call_pending_params(call)
    action = call.action
    if action is None or not action.is_active:
        outcome = Outcome(False, "bad_request", error="the action was removed or switched off")
        services.call_finish(call=call, action=action, outcome=outcome)
        return "ran", call, outcome, params
    call, outcome = services.call_execute(action=action, params=params, call=call)
    return "ran", call, outcome, params


def _post(conversation: Any, text: str, *, citations: list[dict], grounding: dict) -> dict:

    reply = conversation_services.assistant_message_start(conversation=conversation, model="")
    return message_finish_push(  # the same path as every answer
        reply,
        content=text,
        citations=citations,
        status=MessageStatus.COMPLETE,
        decision=Decision.ANSWER if citations else Decision.DECLINE,
        grounding=grounding,
    )


def _mark_asking_message(conversation: Any, call_id: str, state: str) -> None:
    """The message that asked for confirmation no longer offers it (on replay too)."""
    messages = Message.objects.for_tenant(conversation.tenant_id).filter(
        conversation=conversation, grounding__action__call_id=call_id
    )
    for message in messages:
        grounding = dict(message.grounding)
        grounding["action"] = {**grounding["action"], "state": state}
        Message.objects.for_tenant(conversation.tenant_id).filter(pk=message.pk).update(
            grounding=grounding
        )


def _confirm_and_answer(*, conversation: Any, call_id: str, accept: bool, by: str) -> dict:
    """Run (or decline) the confirmed call and post the answer; the frame for this socket."""
    try:
        call_id = str(uuid.UUID(call_id))
    except ValueError:
        return {"type": "action_status", "call_id": call_id, "status": "unknown"}
    state, call, outcome, params = _confirm_sync(
        conversation=conversation, call_id=call_id, accept=accept, by=by
    )
    if state in {"ran", "declined"}:
        _mark_asking_message(
            conversation, call_id, call.status if call is not None else CallStatus.DECLINED
        )
    if state in {"duplicate", "unknown"}:
        return {
            "type": "action_status",
            "call_id": call_id,
            "status": call.status if call else "unknown",
            "duplicate": state == "duplicate",
        }
    base = {"outcome": "action", "dropped": [], "signals": {"step": "confirmed"}}
    if state == "declined":
        _post(conversation, DECLINED_TEXT, citations=[], grounding={**base, "reason": "declined"})
        return {"type": "action_status", "call_id": call_id, "status": CallStatus.DECLINED}
    action = call.action
    assert outcome is not None
    if outcome.ok and action is not None:
        text = result_text(action, params, outcome.shown)
        _post(
            conversation,
            text,
            citations=[citation(action, call, params, text)],
            grounding={**base, "reason": "", "call_id": str(call.public_id)},
        )
    else:
        text = (
            failure_text(action, params, outcome)
            if action is not None
            else FAILED_TEXT.format(title=call.action_name) + prompts.OFFER_PERSON_TEXT
        )
        _post(
            conversation,
            text,
            citations=[],
            grounding={**base, "reason": outcome.kind, "call_id": str(call.public_id)},
        )
    return {"type": "action_status", "call_id": call_id, "status": call.status}


# The HTTP call may take the action's whole timeout: not on the one thread-sensitive thread.
confirm = db_async(_confirm_and_answer, thread_sensitive=False)
