"""HTTP alternatives to the chat websocket, for widgets and pages that cannot hold one open.

`POST /chat/ask` answers in one JSON response; `GET|POST /chat/stream` streams the same
frames as the websocket as server-sent events (docs/chat.md); `POST /chat/confirm` confirms or
declines an action that changes data, as the websocket's `confirm` frame does
(docs/actions.md). All authenticate like the websocket: the widget key, the page's Origin
(CORS is answered for allowed origins only) and the optional end-user token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from apps.actions.demo_orders import DEMO_CUSTOMERS
from apps.assistant import actions_turn
from apps.assistant.services import answer_message
from apps.conversations import selectors
from apps.conversations.access import (
    MAX_CLIENT_ID,
    Session,
    authorize,
    conversation_start_for,
    customer_message_post,
)
from apps.core import ratelimit, realtime
from apps.core.asyncdb import db_async
from apps.core.errors import (
    ApplicationError,
    PermissionDeniedError,
    RateLimitedError,
    error_response,
)
from apps.tenants.models import WidgetKey
from apps.tenants.selectors import tenant_get_by_slug
from apps.tenants.services import end_user_token_sign

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Answers that outlive their request (the client went away) still finish and are stored.
_background: set[asyncio.Task] = set()


def _invalid(message: str, details: Any = None) -> ApplicationError:
    return ApplicationError(message, details)


def _error(exc: ApplicationError, origin_ok: str | None = None) -> HttpResponse:
    return _cors(error_response(exc), origin_ok)


def _cors(response: HttpResponse, origin: str | None) -> HttpResponse:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


def _params(request: HttpRequest) -> dict[str, Any]:
    """Query parameters, overlaid by a JSON object body for POST."""
    params: dict[str, Any] = {k: v for k, v in request.GET.items()}
    if request.method == "POST":
        if len(request.body) > MAX_BODY_BYTES:
            raise ApplicationError(
                "The request body is too large.", code="too_large", status_code=413
            )
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError as exc:
                raise _invalid("The body is not valid JSON.") from exc
            if not isinstance(body, dict):
                raise _invalid("The body must be a JSON object.")
            params.update(body)
    return params


async def _authenticate(request: HttpRequest, params: dict[str, Any]) -> Session:
    """The widget key, Origin, end-user token and conversation, checked as the websocket
    checks them; counts one message against the key's and the client's limits."""
    key = request.headers.get("X-Widget-Key") or params.get("key") or ""
    if not isinstance(key, str):
        raise _invalid("key must be a string.")
    for name in ("conversation_id", "token", "lang", "page"):
        if params.get(name) is not None and not isinstance(params[name], str):
            raise _invalid(f"{name} must be a string.")
    client = ratelimit.client_address(request)
    limited = await ratelimit.hit_all_async(
        [
            (f"http-message:key:{key[:64]}", settings.CHAT_RATE_MESSAGES_PER_KEY),
            (f"ws-message:ip:{client}", settings.CHAT_RATE_MESSAGES_PER_CLIENT),
        ]
    )
    if not limited.allowed:
        raise RateLimitedError("Too many messages; try again in a minute.")
    try:
        return await db_async(authorize)(
            key=key[:64],
            origin=request.headers.get("Origin"),
            token=params.get("token") or None,
            conversation_id=params.get("conversation_id") or params.get("conversation") or None,
            lang=params.get("lang") or "",
            page=params.get("page") or "",
        )
    except PermissionDeniedError as exc:
        logger.info("chat HTTP request refused: %s", exc.message)
        raise PermissionDeniedError(
            "This widget key may not be used here.", code="forbidden"
        ) from exc


async def _open(request: HttpRequest) -> tuple[Session, dict[str, Any], str, str | None]:
    """Authenticate and validate; returns (session, params, text, client_id)."""
    params = _params(request)
    text, client_id = params.get("text"), params.get("client_id")
    if not isinstance(text, str) or not text.strip():
        raise _invalid("text is required.", {"text": ["This field is required."]})
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise _invalid(
            f"text is longer than {settings.CHAT_MAX_MESSAGE_CHARS} characters.",
            {"text": ["Too long."]},
        )
    if client_id is not None and (
        not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID
    ):
        raise _invalid("client_id must be a string of 1 to 64 characters.")
    session = await _authenticate(request, params)
    return session, params, text.strip(), client_id


async def _post(session: Session, text: str, client_id: str | None):
    if session.conversation is None:
        session.conversation = await db_async(conversation_start_for)(session)
    return await db_async(customer_message_post)(session.conversation, text, client_id)


def _start_answer(session: Session, message: Any) -> asyncio.Task:
    task = asyncio.create_task(
        answer_message(
            conversation=session.conversation,
            message=message,
            access_groups=session.access_groups,
            language=session.language,
        )
    )
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


def _preflight(request: HttpRequest) -> HttpResponse:
    """CORS preflight: only origins that some active widget key's tenant allows are answered."""
    origin = request.headers.get("Origin")
    response = HttpResponse(status=204)
    if origin and request.headers.get("X-Widget-Key"):
        key = WidgetKey.objects.unscoped().filter(
            key=request.headers["X-Widget-Key"][:64], is_active=True, tenant__is_active=True
        )
        entry = key.select_related("tenant").first()
        if entry is None or not entry.tenant.origin_allowed(origin):
            return response
    elif not origin:
        return response
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type, X-Widget-Key"
    response["Access-Control-Max-Age"] = "600"
    return _cors(response, origin)


async def _post_only(request: HttpRequest) -> HttpResponse | None:
    """The answer to a CORS preflight or to a method other than POST; None for a POST."""
    if request.method == "OPTIONS":
        return await db_async(_preflight)(request)
    if request.method != "POST":
        return _error(ApplicationError("Use POST.", code="method_not_allowed", status_code=405))
    return None


@csrf_exempt
async def ask(request: HttpRequest) -> HttpResponse:
    """One question, one JSON answer with citations (or the handoff that replaced it)."""
    if (early := await _post_only(request)) is not None:
        return early
    origin = request.headers.get("Origin")
    try:
        session, _, text, client_id = await _open(request)
    except ApplicationError as exc:
        return _error(exc)
    message, created, needs_answer = await _post(session, text, client_id)
    answer = None
    if needs_answer:
        answer = await _start_answer(session, message)
    elif not created:
        # A repeated client_id: return what was answered the first time, if anything.
        later = await db_async(selectors.messages_after)(
            conversation=session.conversation, since=message.seq, limit=20
        )
        replies = [m for m in later if m.role in {"assistant", "agent"}]
        answer = selectors.message_wire(replies[0]) if replies else None
    conversation = session.conversation
    await db_async(conversation.refresh_from_db)(fields=["status", "handoff_reason"])
    body = {
        "conversation_id": str(conversation.public_id),
        "status": conversation.status,
        "message": selectors.message_wire(message),
        "answer": answer,
        "handoff": (
            {"reason": conversation.handoff_reason}
            if conversation.status == "waiting_for_human"
            else None
        ),
    }
    return _cors(JsonResponse(body, status=201 if created else 200), origin)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _relay(session: Session, message: Any, created: bool, needs_answer: bool):
    """Server-sent events: the customer's message, then the answer's frames as they come."""
    conversation = session.conversation
    yield _sse(
        "message",
        {
            "message": selectors.message_wire(message),
            "conversation_id": str(conversation.public_id),
        },
    )
    if not needs_answer:
        yield _sse("end", {"status": conversation.status})
        return
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = realtime.conversation_group(conversation.tenant_id, conversation.pk)
    await layer.group_add(group, channel)
    try:
        task = _start_answer(session, message)
        while True:
            receive = asyncio.ensure_future(layer.receive(channel))
            done, _ = await asyncio.wait({receive, task}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                # The answer is complete; its last frames may still be on their way to us.
                try:
                    event = await asyncio.wait_for(receive, timeout=0.5)
                except TimeoutError:
                    break
            else:
                event = receive.result()
            payload = event.get("payload") or {}
            kind = payload.get("type")
            if kind == "typing" or (kind == "message" and payload["message"]["id"] == message.seq):
                continue
            yield _sse("done" if kind == "message_done" else kind, payload)
        await db_async(conversation.refresh_from_db)(fields=["status"])
        yield _sse("end", {"status": conversation.status})
    finally:
        await layer.group_discard(group, channel)


@csrf_exempt
async def stream(request: HttpRequest) -> HttpResponse:
    """The answer as server-sent events (`GET` for EventSource, `POST` with a JSON body)."""
    if request.method == "OPTIONS":
        return await db_async(_preflight)(request)
    if request.method not in {"GET", "POST"}:
        return _error(
            ApplicationError("Use GET or POST.", code="method_not_allowed", status_code=405)
        )
    origin = request.headers.get("Origin")
    try:
        session, _, text, client_id = await _open(request)
    except ApplicationError as exc:
        return _error(exc)
    message, created, needs_answer = await _post(session, text, client_id)
    response = StreamingHttpResponse(
        _relay(session, message, created, needs_answer), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return _cors(response, origin)


@csrf_exempt
async def confirm(request: HttpRequest) -> HttpResponse:
    """Confirm (``"accept": true``, the default) or decline an action the assistant asked about.

    Body: ``{"conversation_id", "call_id", "accept"?, "token"?}`` with the widget key. The call
    runs once: a repeat (double click, a second tab, the websocket too) gets its status back with
    ``"duplicate": true``; a call of another conversation is ``unknown``. Answers the
    websocket's ``action_status`` frame and the assistant's message about the outcome.
    """
    if (early := await _post_only(request)) is not None:
        return early
    origin = request.headers.get("Origin")
    try:
        params = _params(request)
        call_id, accept = params.get("call_id"), params.get("accept", True)
        if not isinstance(call_id, str) or not 0 < len(call_id) <= 64:
            raise _invalid("call_id is required: the action's call_id from the message.")
        if not isinstance(accept, bool):
            raise _invalid("accept must be true or false.")
        if not params.get("conversation_id"):
            raise _invalid("conversation_id is required: the conversation that asked.")
        session = await _authenticate(request, params)
    except ApplicationError as exc:
        return _error(exc)
    conversation = session.conversation
    who = session.actor
    newest = await db_async(selectors.messages_after)(conversation=conversation, limit=1)
    before = newest[-1].seq if newest else 0
    try:
        frame = await actions_turn.confirm(
            conversation=conversation, call_id=call_id, accept=accept, by=who
        )
    except Exception:
        logger.exception("confirming action call %s over HTTP failed", call_id)
        return _error(
            ApplicationError(
                "Sorry, that could not be done. Please use “Talk to a person”.",
                code="action_failed",
                status_code=502,
            ),
            origin,
        )
    # The assistant's message about the outcome (none for a repeat or an unknown call).
    later = await db_async(selectors.messages_after)(conversation=conversation, since=before)
    replies = [m for m in later if m.role == "assistant"]
    answer = selectors.message_wire(replies[-1]) if replies else None
    body = {**frame, "conversation_id": str(conversation.public_id), "answer": answer}
    return _cors(JsonResponse(body), origin)


# --- The demo page -----------------------------------------------------------------------------


def _demo_context() -> dict[str, Any]:
    tenant = tenant_get_by_slug(slug=settings.DEMO_TENANT_SLUG)
    if tenant is None:
        raise Http404("The demo tenant does not exist; run `manage.py seed_demo`.")
    widget_key = WidgetKey.objects.for_tenant(tenant).filter(is_active=True).first()
    if widget_key is None:
        raise Http404("The demo tenant has no active widget key.")
    return {"tenant": tenant, "widget_key": widget_key.key}


def _demo_user_token(tenant: Any, customer: str) -> str:
    """`?customer=cust_alice`: the page signs the visitor in as that demo customer, as a
    company's own site would, so identity-bound actions (order status) work in the demo."""
    known = DEMO_CUSTOMERS.get(customer)
    if known is None:
        return ""
    return end_user_token_sign(
        tenant=tenant, external_id=customer, email=known["email"], name=known["name"]
    )


async def demo(request: HttpRequest) -> HttpResponse:
    """A help-center page of the demo tenant with the widget embedded, as a customer would."""
    context = await db_async(_demo_context)()
    customer = request.GET.get("customer", "")
    if customer:
        context["user_token"] = _demo_user_token(context["tenant"], customer)
    return render(request, "demo/index.html", context)
