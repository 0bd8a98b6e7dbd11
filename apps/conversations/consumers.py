"""The customer's chat websocket (protocol: docs/websocket.md).

The consumer authenticates the widget key, the page's Origin and the optional end-user token,
joins the conversation's group and forwards what is sent there. Customer messages are stored
first, echoed, then answered by `apps.assistant` in a task of their own, so pings, typing and
a request for a person keep flowing while an answer streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from apps.conversations import answering, feedback, selectors, services
from apps.conversations.access import (
    MAX_CLIENT_ID,
    Session,
    authorize,
    conversation_start_for,
    customer_message_post,
    team_for,
)
from apps.conversations.models import Conversation, FeedbackKind, HandoffReason, MessageRole
from apps.core import ratelimit, realtime
from apps.core.asyncdb import db_async
from apps.core.errors import (
    ApplicationError,
    PermissionDeniedError,
    RateLimitedError,
    close_code,
    error_frame,
)
from apps.core.observability import metrics
from apps.tenants.selectors import widget_settings

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
MAX_COMMENT = 2000
CLIENT_TYPES = frozenset({"message", "typing", "handoff", "feedback", "csat", "ping", "confirm"})


def _query(scope: dict[str, Any]) -> dict[str, str]:
    raw = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return {k: v[0] for k, v in raw.items() if v}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


MAX_BURST_WAITS = 5


def burst_question(messages: list[Any]) -> Any:
    """One question made of a burst of messages: the first message (so the history before it
    is the history of the whole burst) holding every fragment's text, in order."""
    if len(messages) == 1:
        return messages[0]
    question = copy.copy(messages[0])
    question.content = "\n".join(m.content for m in messages)
    return question


def _int_or_none(value: str | None) -> int | None:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number >= 0 else None


class ChatConsumer(AsyncJsonWebsocketConsumer):
    session: Session | None = None
    group: str | None = None

    # --- Connecting -------------------------------------------------------------------------

    async def connect(self) -> None:
        self.session = None
        self.group = None
        self.answer_lock = asyncio.Lock()
        self.answer_tasks: set[asyncio.Task] = set()
        # Customer messages waiting out the burst debounce, answered together.
        self.burst: list[Any] = []
        self.burst_timer: asyncio.Task | None = None
        self.burst_started = 0.0
        self.frames_window = (0.0, 0)
        # Accept first so the close code (4403, 4429) reaches the browser; a refused handshake
        # would only show as 1006 there.
        await self.accept()
        params = _query(self.scope)
        key = params.get("key", "")[:64]
        self.client_ip = ratelimit.client_address(self.scope)
        limited = await ratelimit.hit_all_async(
            [
                (f"ws-connect:key:{key}", settings.CHAT_RATE_CONNECTS_PER_KEY),
                (f"ws-connect:ip:{self.client_ip}", settings.CHAT_RATE_CONNECTS_PER_CLIENT),
            ]
        )
        if not limited.allowed:
            refusal = RateLimitedError("Too many connections; try again in a minute.")
            await self.send_json(error_frame(refusal))
            await self.close(code=close_code(refusal))
            return
        try:
            self.session = await db_async(authorize)(
                key=key,
                origin=_header(self.scope, b"origin"),
                token=params.get("token") or None,
                conversation_id=params.get("conversation") or None,
                lang=params.get("lang", ""),
                page=params.get("page", ""),
            )
        except PermissionDeniedError as exc:
            logger.info("chat connection refused: %s", exc.message)
            await self.close(code=close_code(exc))
            return
        metrics.ws_connected()
        self.counted = True
        conversation = self.session.conversation
        messages: list[dict[str, Any]] = []
        if conversation is not None:
            await self.join(conversation)
            since = _int_or_none(params.get("since"))
            messages = await db_async(self.replay)(conversation, since)
        ready = {
            "type": "ready",
            "conversation_id": str(conversation.public_id) if conversation else None,
            "status": conversation.status if conversation else "open",
            "messages": messages,
            # The key's look, greeting and languages, as the admin last saved them.
            "widget": widget_settings(widget_key=self.session.widget_key),
        }
        team = await db_async(team_for)(self.session)
        if team is not None:
            # Out of office hours: the widget shows the team as away, and when it is back.
            ready["team"] = team
        await self.send_json(ready)

    @staticmethod
    def replay(conversation: Conversation, since: int | None) -> list[dict[str, Any]]:
        found = selectors.messages_after(conversation=conversation, since=since)
        return [selectors.message_wire(m) for m in found]

    async def join(self, conversation: Conversation) -> None:
        self.group = realtime.conversation_group(conversation.tenant_id, conversation.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            metrics.ws_disconnected()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        # An answer that is streaming is finished and stored even though this customer left:
        # they see it when they reconnect.
        if self.answer_tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(
                    self.answer_tasks, timeout=settings.ASSISTANT_ANSWER_TIMEOUT + 15
                )

    # --- Frames from the group --------------------------------------------------------------

    async def realtime_event(self, event: dict[str, Any]) -> None:
        payload = event.get("payload") or {}
        if payload.get("type") == "typing" and payload.get("role") == "customer":
            return  # the customer's own typing is for the agents
        await self.send_json(payload)

    # --- Frames from the customer ---------------------------------------------------------------

    async def send_error(self, code: str, message: str, **extra: Any) -> None:
        """An error frame for a frame that cannot be carried out (`extra`: what it is about)."""
        await self.send_json(error_frame(ApplicationError(message, extra, code=code)))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        if not self.frame_allowed():
            await self.send_error("rate_limited", "Too many frames; slow down.")
            return
        if text_data is None:
            await self.send_error("invalid", "Frames must be JSON text.")
            return
        if len(text_data) > MAX_FRAME_BYTES:
            await self.send_error("invalid", "The frame is too large.")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error("invalid", "The frame is not valid JSON.")
            return
        if not isinstance(content, dict):
            await self.send_error("invalid", "A frame must be a JSON object.")
            return
        await self.receive_json(content)

    def frame_allowed(self) -> bool:
        """Per-connection flood guard (pings, typing, junk); message limits are per key/client."""
        started, count = self.frames_window
        now = time.monotonic()
        if now - started > 60:
            started, count = now, 0
        self.frames_window = (started, count + 1)
        return count < settings.CHAT_RATE_FRAMES_PER_CONNECTION

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content.get("type")
        if kind not in CLIENT_TYPES:
            await self.send_error("invalid", f"Unknown frame type {str(kind)[:40]!r}.")
            return
        await getattr(self, f"on_{kind}")(content)

    async def on_ping(self, content: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    async def on_typing(self, content: dict[str, Any]) -> None:
        active = content.get("active")
        if not isinstance(active, bool):
            await self.send_error("invalid", "typing needs active: true or false.")
            return
        conversation = self.session.conversation
        if conversation is not None:
            await realtime.chat_typing_send_async(
                tenant_id=conversation.tenant_id,
                conversation_id=conversation.pk,
                role="customer",
                active=active,
            )

    async def on_message(self, content: dict[str, Any]) -> None:
        client_id, text = content.get("client_id"), content.get("text")
        if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID:
            await self.send_error("invalid", "client_id must be a string of 1 to 64 characters.")
            return
        if not isinstance(text, str) or not text.strip():
            await self.send_error("invalid", "text is required.", client_id=client_id)
            return
        if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
            await self.send_error(
                "invalid",
                f"The message is longer than {settings.CHAT_MAX_MESSAGE_CHARS} characters.",
                client_id=client_id,
            )
            return
        limited = await ratelimit.hit_all_async(
            [
                (
                    f"ws-message:key:{self.session.widget_key.key}",
                    settings.CHAT_RATE_MESSAGES_PER_KEY,
                ),
                (f"ws-message:ip:{self.client_ip}", settings.CHAT_RATE_MESSAGES_PER_CLIENT),
            ]
        )
        if not limited.allowed:
            await self.send_error(
                "rate_limited", "You are sending messages too fast.", client_id=client_id
            )
            return
        text = text.strip()
        self.embed_early(text)
        conversation = await self.ensure_conversation()
        message, created, needs_answer = await db_async(customer_message_post)(
            conversation, text, client_id
        )
        if not created:
            # A re-send (lost echo, reconnect): confirm the stored message only to this socket.
            await self.send_json(
                {
                    "type": "message",
                    "message": selectors.message_wire(message),
                    "conversation_id": str(conversation.public_id),
                }
            )
        if needs_answer:
            self.start_answer(message)

    async def ensure_conversation(self) -> Conversation:
        session = self.session
        if session.conversation is None:
            session.conversation = await db_async(conversation_start_for)(session)
            await self.join(session.conversation)
            await self.send_json(
                {
                    "type": "status",
                    "status": session.conversation.status,
                    "conversation_id": str(session.conversation.public_id),
                }
            )
        return session.conversation

    def start_answer(self, message: Any) -> None:
        delay = settings.CHAT_BURST_DEBOUNCE_MS / 1000
        if delay <= 0:
            self.keep(asyncio.create_task(self.answer(message)))
            return
        # Fragments sent in quick succession ("hi" / "my order" / "hasn't arrived") get one
        # answer to all of them: each new one restarts the wait, up to MAX_BURST_WAITS waits.
        now = time.monotonic()
        if not self.burst:
            self.burst_started = now
        self.burst.append(message)
        if self.burst_timer is not None and now - self.burst_started < delay * MAX_BURST_WAITS:
            self.burst_timer.cancel()
        elif self.burst_timer is not None:
            return  # waited long enough: the running timer answers this one too
        self.burst_timer = asyncio.create_task(self.answer_burst_after(delay))
        self.keep(self.burst_timer)

    async def answer_burst_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        burst, self.burst, self.burst_timer = self.burst, [], None
        if burst:
            await self.answer(burst_question(burst))

    def embed_early(self, text: str) -> None:
        """Embed the question while it is stored: the embedder remembers the vector, so the
        answer's retrieval finds it ready (a question answered by a person wastes ~3 ms)."""
        if settings.ASSISTANT_MODE != "echo":
            self.keep(asyncio.create_task(answering.answerer().embed_ahead(text)))

    def keep(self, task: asyncio.Task) -> None:
        self.answer_tasks.add(task)
        task.add_done_callback(self.answer_tasks.discard)

    async def answer(self, message: Any) -> None:
        # One answer at a time per connection, in the order the customer wrote.
        async with self.answer_lock:
            try:
                await answering.answerer().answer_message(
                    conversation=self.session.conversation,
                    message=message,
                    access_groups=self.session.access_groups,
                    language=self.session.language,
                )
            except Exception:
                logger.exception("answering message %s failed", message.pk)
                await self.send_error(
                    "answer_failed",
                    "Sorry, something went wrong while answering. Please try again, or use "
                    "“Talk to a person”.",
                )

    async def on_confirm(self, content: dict[str, Any]) -> None:
        """The customer confirms (or declines) an action that changes data (apps/actions).

        The call runs once: a second confirm frame for it (double click, second tab) only gets
        its status back."""
        call_id, accept = content.get("call_id"), content.get("accept", True)
        if not isinstance(call_id, str) or not 0 < len(call_id) <= 64:
            await self.send_error("invalid", "confirm needs the call_id of the action.")
            return
        if not isinstance(accept, bool):
            await self.send_error("invalid", "accept must be true or false.")
            return
        conversation = self.session.conversation
        if conversation is None:
            await self.send_error("invalid", "There is nothing to confirm yet.")
            return
        self.keep(asyncio.create_task(self.confirm_action(conversation, call_id, accept)))

    async def confirm_action(self, conversation: Conversation, call_id: str, accept: bool) -> None:
        who = self.session.actor
        async with self.answer_lock:
            try:
                frame = await answering.answerer().confirm_action(
                    conversation=conversation, call_id=call_id, accept=accept, by=who
                )
            except Exception:
                logger.exception("confirming action call %s failed", call_id)
                await self.send_error(
                    "action_failed",
                    "Sorry, that could not be done. Please use “Talk to a person”.",
                    call_id=call_id,
                )
                return
        await self.send_json(frame)

    async def on_handoff(self, content: dict[str, Any]) -> None:
        conversation = await self.ensure_conversation()
        changed = await db_async(self.request_handoff)(conversation)
        if not changed:
            # Already with a person (or waiting): tell this socket where things stand.
            await db_async(conversation.refresh_from_db)(fields=["status"])
            await self.send_json(
                {
                    "type": "status",
                    "status": conversation.status,
                    "conversation_id": str(conversation.public_id),
                }
            )

    @staticmethod
    def request_handoff(conversation: Conversation) -> bool:
        changed = services.handoff_request(
            conversation=conversation, reason=HandoffReason.CUSTOMER_REQUEST
        )
        if changed:
            text = answering.answerer().customer_request_text
            services.message_post_system(conversation=conversation, content=text)
        return changed

    async def on_feedback(self, content: dict[str, Any]) -> None:
        message_id, rating = content.get("message_id"), content.get("rating")
        if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id < 1:
            await self.send_error("invalid", "feedback needs a message_id.")
            return
        if rating not in {"up", "down"}:
            await self.send_error("invalid", "rating must be up or down.")
            return
        conversation = self.session.conversation
        if conversation is None or not await db_async(self.record_thumbs)(
            conversation, message_id, rating
        ):
            await self.send_error("invalid", "No such answer in this conversation.")
            return
        await self.send_json({"type": "feedback_ack", "message_id": message_id})

    @staticmethod
    def record_thumbs(conversation: Conversation, message_id: int, rating: str) -> bool:
        message = selectors.message_by_seq(conversation=conversation, seq=message_id)
        if message is None or message.role not in {MessageRole.ASSISTANT, MessageRole.AGENT}:
            return False
        feedback.feedback_record(
            conversation=conversation, kind=FeedbackKind.THUMBS, rating=rating, message=message
        )
        return True

    async def on_csat(self, content: dict[str, Any]) -> None:
        score, comment = content.get("score"), content.get("comment", "")
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            await self.send_error("invalid", "score must be a whole number from 1 to 5.")
            return
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            await self.send_error("invalid", f"comment must be text of at most {MAX_COMMENT}.")
            return
        conversation = self.session.conversation
        if conversation is None:
            await self.send_error("invalid", "There is no conversation to rate yet.")
            return
        await db_async(feedback.feedback_record)(
            conversation=conversation, kind=FeedbackKind.CSAT, rating=score, comment=comment
        )
        await self.send_json({"type": "feedback_ack", "message_id": None})
