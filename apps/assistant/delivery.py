"""Finishing an assistant message: store it, count it, and push it to the conversation live.

One path for every answer, hand-off notice and action result (`services`, `actions_turn`).
"""

from __future__ import annotations

from typing import Any

from apps.conversations import services as conversation_services
from apps.conversations.models import Message
from apps.conversations.selectors import message_wire
from apps.core import realtime
from apps.core.observability import metrics


def message_finish_push(message: Message, **fields: Any) -> dict[str, Any]:
    """Finish `message` with `fields`, observe it in the metrics, send `message_done` to the
    conversation's live channel; returns the message as the chat protocol carries it."""
    message = conversation_services.assistant_message_finish(message=message, **fields)
    metrics.observe_answer_message(message)
    wire = message_wire(message)
    realtime.chat_event_send(
        tenant_id=message.tenant_id,
        conversation_id=message.conversation_id,
        event={"type": "message_done", "message": wire},
    )
    return wire
