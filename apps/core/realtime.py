"""The one module that sends realtime events to websocket groups.

Nothing else imports a consumer or calls the channel layer to send. Group names are built here
too, so consumers join exactly the groups these functions send to. Each domain adds typed
functions below for its own events; the consumer for a group forwards an event whose `type` is
`realtime.event` to the client as its `payload`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def tenant_group(tenant_id: Any) -> str:
    """Every agent of a tenant (queue notifications, ingestion progress)."""
    return f"tenant.{tenant_id}"


def conversation_group(tenant_id: Any, conversation_id: Any) -> str:
    """The customer's widget and the agents watching one conversation."""
    return f"tenant.{tenant_id}.conversation.{conversation_id}"


def source_group(tenant_id: Any, source_id: Any) -> str:
    """Admins watching one knowledge source (sync and reindex progress)."""
    return f"tenant.{tenant_id}.source.{source_id}"


def _envelope(payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "realtime.event", "payload": payload}


async def send_async(group: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group, _envelope(payload))
    except Exception:
        logger.exception("realtime send to %s failed", group)


def send(group: str, payload: dict[str, Any]) -> None:
    """Send from synchronous code (services, Celery tasks)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, _envelope(payload))
    except Exception:
        logger.exception("realtime send to %s failed", group)


# --- Typed events per domain (add yours below) ------------------------------------------------

# Chat (apps.conversations, apps.assistant). Payloads are frames of the chat websocket protocol
# (docs/websocket.md); `conversation_id` is the conversation's database id, as in the group name.
# The `*_async` variants are for the consumer's event loop, the others for services and tasks.

ChatRole = Literal["assistant", "agent", "customer"]
HandoffReasonName = Literal[
    "customer_request", "low_confidence", "model_decision", "llm_unavailable"
]


def chat_event_send(*, tenant_id: Any, conversation_id: Any, event: dict[str, Any]) -> None:
    """One protocol frame to the customer's widget and the agents watching the conversation."""
    send(conversation_group(tenant_id, conversation_id), event)


async def chat_event_send_async(
    *, tenant_id: Any, conversation_id: Any, event: dict[str, Any]
) -> None:
    await send_async(conversation_group(tenant_id, conversation_id), event)


def chat_message_send(
    *,
    tenant_id: Any,
    conversation_id: Any,
    message: dict[str, Any],
    conversation_public_id: str | None = None,
) -> None:
    """A persisted message (customer echo, agent reply, system notice) as a `message` frame."""
    event: dict[str, Any] = {"type": "message", "message": message}
    if conversation_public_id:
        event["conversation_id"] = conversation_public_id
    chat_event_send(tenant_id=tenant_id, conversation_id=conversation_id, event=event)


async def chat_token_send_async(
    *, tenant_id: Any, conversation_id: Any, message_id: int, delta: str
) -> None:
    await chat_event_send_async(
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        event={"type": "token", "message_id": message_id, "delta": delta},
    )


async def chat_message_done_send_async(
    *, tenant_id: Any, conversation_id: Any, message: dict[str, Any]
) -> None:
    await chat_event_send_async(
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        event={"type": "message_done", "message": message},
    )


def chat_typing_send(
    *, tenant_id: Any, conversation_id: Any, role: ChatRole, active: bool, name: str = ""
) -> None:
    event = {"type": "typing", "role": role, "active": active, "name": name}
    chat_event_send(tenant_id=tenant_id, conversation_id=conversation_id, event=event)


async def chat_typing_send_async(
    *, tenant_id: Any, conversation_id: Any, role: ChatRole, active: bool, name: str = ""
) -> None:
    event = {"type": "typing", "role": role, "active": active, "name": name}
    await chat_event_send_async(tenant_id=tenant_id, conversation_id=conversation_id, event=event)


def chat_handoff_send(*, tenant_id: Any, conversation_id: Any, reason: HandoffReasonName) -> None:
    event = {"type": "handoff", "status": "waiting_for_human", "reason": reason}
    chat_event_send(tenant_id=tenant_id, conversation_id=conversation_id, event=event)


def chat_agent_joined_send(*, tenant_id: Any, conversation_id: Any, agent_name: str) -> None:
    event = {"type": "agent_joined", "agent": {"name": agent_name}}
    chat_event_send(tenant_id=tenant_id, conversation_id=conversation_id, event=event)


def chat_status_send(
    *, tenant_id: Any, conversation_id: Any, status: str, conversation_public_id: str
) -> None:
    event = {"type": "status", "status": status, "conversation_id": conversation_public_id}
    chat_event_send(tenant_id=tenant_id, conversation_id=conversation_id, event=event)


def chat_csat_request_send(*, tenant_id: Any, conversation_id: Any) -> None:
    chat_event_send(
        tenant_id=tenant_id, conversation_id=conversation_id, event={"type": "csat_request"}
    )


def chat_queue_notify(*, tenant_id: Any, conversation_public_id: str, reason: str) -> None:
    """Tell the tenant's agents that a conversation waits for a person."""
    send(
        tenant_group(tenant_id),
        {"type": "handoff", "conversation_id": conversation_public_id, "reason": reason},
    )


# Knowledge (apps.knowledge): sync and reindex progress for the admin.


def knowledge_admin_group() -> str:
    """Superusers watching installation-wide knowledge work (reindex of every tenant)."""
    return "knowledge.admin"


def send_source_progress(
    *, tenant_id: Any, source_id: Any, status: str, progress: dict[str, Any]
) -> None:
    """A knowledge source's sync moved on: to its watchers and to the tenant's agents."""
    payload = {
        "type": "source.progress",
        "source": str(source_id),
        "status": status,
        **progress,
    }
    send(source_group(tenant_id, source_id), payload)
    send(tenant_group(tenant_id), payload)


def send_reindex_progress(
    *, index_id: Any, status: str, progress: dict[str, Any], tenant_id: Any = None
) -> None:
    """A reindex moved on. With `tenant_id`, the counts are that tenant's own (its agents see
    them); without, they are installation-wide and go to superusers only."""
    payload = {"type": "reindex.progress", "index": str(index_id), "status": status, **progress}
    send(tenant_group(tenant_id) if tenant_id is not None else knowledge_admin_group(), payload)


# Agent workspace (apps.workspace): the live console's queue.


def console_queue_send(
    *, tenant_id: Any, conversation_public_id: str, event: str, card: dict[str, Any]
) -> None:
    """A conversation in the agents' queue changed (taken, handed back, resolved, routed).

    Sent to the tenant's group; the console consumer forwards it only to agents allowed to see
    the conversation's inbox.
    """
    send(
        tenant_group(tenant_id),
        {
            "type": "console.queue",
            "event": event,
            "conversation_id": conversation_public_id,
            "conversation": card,
        },
    )
