"""The chat websocket with people in it (docs/websocket.md): handoff, an agent taking over and
typing, the assistant silent meanwhile; feedback and message numbers seen by the widget.
Against real PostgreSQL and Redis, the assistant in its model-free echo mode."""

from __future__ import annotations

import pytest

from apps.conversations import services
from apps.conversations.models import Conversation, ConversationStatus, Feedback, Message
from apps.core.asyncdb import db_async as sync_to_async
from apps.events.models import Event
from tests.support.chat import (
    chat_settings,  # noqa: F401
    conversation_with_messages,
    drain,
    open_chat,
    receive_answer,
    receive_until,
    send_message,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("chat_settings")]


@sync_to_async
def db(fn, *args, **kwargs):
    return fn(*args, **kwargs)


# --- Handoff, agents, silence -------------------------------------------------------------------


async def test_handoff_frame_queues_the_conversation_and_the_assistant_goes_silent(tenant_a):
    communicator, _ = await open_chat(tenant_a)
    await send_message(communicator, "hello", "h1")
    await receive_answer(communicator)
    await communicator.send_json_to({"type": "handoff"})
    _, handoff = await receive_until(communicator, "handoff")
    assert handoff == {
        "type": "handoff",
        "status": "waiting_for_human",
        "reason": "customer_request",
    }
    _, notice = await receive_until(communicator, "message")
    assert notice["message"]["role"] == "system"

    await send_message(communicator, "still there?", "h2")
    frames = await drain(communicator, quiet=1.0)
    assert not [f for f in frames if f["type"] in {"token", "message_done", "message"}], frames
    conversation = await db(lambda: Conversation.objects.for_tenant(tenant_a.tenant).get())
    assert conversation.status == ConversationStatus.WAITING_FOR_HUMAN
    assert conversation.handoff_reason == "customer_request"
    assert (
        await db(
            lambda: (
                Event.objects.for_tenant(tenant_a.tenant).filter(type="handoff.requested").count()
            )
        )
        == 1
    )

    # Asking again does not queue twice; the socket is told the status.
    await communicator.send_json_to({"type": "handoff"})
    status = await communicator.receive_json_from()
    assert status["type"] == "status" and status["status"] == "waiting_for_human"
    await communicator.disconnect()


async def test_agent_takes_over_live_and_the_customer_sees_typing_and_replies(tenant_a):
    communicator, _ = await open_chat(tenant_a)
    await send_message(communicator, "I need help", "h1")
    await receive_answer(communicator)
    conversation = await db(lambda: Conversation.objects.for_tenant(tenant_a.tenant).get())

    await db(services.conversation_assign, conversation=conversation, agent=tenant_a.agent)
    _, joined = await receive_until(communicator, "agent_joined")
    assert joined["agent"]["name"]
    from apps.core import realtime

    await db(
        realtime.chat_typing_send,
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.pk,
        role="agent",
        active=True,
        name="Alex",
    )
    _, typing = await receive_until(communicator, "typing")
    assert typing == {"type": "typing", "role": "agent", "active": True, "name": "Alex"}
    await db(
        services.message_post_agent,
        conversation=conversation,
        agent=tenant_a.agent,
        content="On it!",
    )
    _, reply = await receive_until(communicator, "message")
    assert reply["message"]["role"] == "agent" and reply["message"]["content"] == "On it!"

    await send_message(communicator, "thanks", "h2")
    assert not [
        f for f in await drain(communicator, quiet=1.0) if f["type"] in {"token", "message_done"}
    ]

    await db(services.conversation_resolve, conversation=conversation, by=tenant_a.agent)
    _, status = await receive_until(communicator, "status")
    assert status["status"] == "resolved"
    _, _ = await receive_until(communicator, "csat_request")
    await communicator.disconnect()


async def test_customer_typing_reaches_agents_but_is_not_echoed(tenant_a):
    communicator, _ = await open_chat(tenant_a)
    await send_message(communicator, "hello", "h1")
    await receive_answer(communicator)
    conversation_id = (await db(lambda: Conversation.objects.for_tenant(tenant_a.tenant).get())).pk
    from channels.layers import get_channel_layer

    from apps.core.realtime import conversation_group

    layer = get_channel_layer()
    agent_channel = await layer.new_channel()
    await layer.group_add(conversation_group(tenant_a.tenant.pk, conversation_id), agent_channel)
    await communicator.send_json_to({"type": "typing", "active": True})
    seen = await layer.receive(agent_channel)
    assert seen["payload"] == {"type": "typing", "role": "customer", "active": True, "name": ""}
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


# --- Feedback -------------------------------------------------------------------------------------


async def test_thumbs_and_csat_are_stored_and_acknowledged(tenant_a):
    communicator, _ = await open_chat(tenant_a)
    echo = await send_message(communicator, "hello", "h1")
    _, done = await receive_answer(communicator)
    answer_id = done["message"]["id"]

    await communicator.send_json_to({"type": "feedback", "message_id": answer_id, "rating": "up"})
    assert await communicator.receive_json_from() == {
        "type": "feedback_ack",
        "message_id": answer_id,
    }
    await communicator.send_json_to({"type": "feedback", "message_id": answer_id, "rating": "down"})
    assert (await communicator.receive_json_from())["type"] == "feedback_ack"
    # A customer's own message, or another conversation's, cannot be rated.
    await communicator.send_json_to(
        {"type": "feedback", "message_id": echo["message"]["id"], "rating": "up"}
    )
    assert (await communicator.receive_json_from())["code"] == "invalid"
    await communicator.send_json_to({"type": "csat", "score": 4, "comment": "quick"})
    assert await communicator.receive_json_from() == {"type": "feedback_ack", "message_id": None}

    feedback = await db(
        lambda: list(
            Feedback.objects.for_tenant(tenant_a.tenant)
            .order_by("kind")
            .values_list("kind", "rating", "comment")
        )
    )
    assert feedback == [("csat", "4", "quick"), ("thumbs", "down", "")]
    events = await db(
        lambda: Event.objects.for_tenant(tenant_a.tenant).filter(type="feedback.received").count()
    )
    assert events == 3
    await communicator.disconnect()


async def test_feedback_on_another_tenants_message_is_refused(tenant_a, tenant_b):
    # Feedback names a message by its number in the customer's own conversation, so another
    # tenant's message cannot be named: neither by its primary key nor by a number that only
    # the other conversation holds.
    other = await db(conversation_with_messages, tenant_b, 5)
    other_message = await db(lambda: other.messages.order_by("seq").last())
    communicator, _ = await open_chat(tenant_a)
    await send_message(communicator, "hello", "h1")
    await receive_answer(communicator)
    for message_id in (other_message.pk, other_message.seq):
        await communicator.send_json_to(
            {"type": "feedback", "message_id": message_id, "rating": "down"}
        )
        assert (await communicator.receive_json_from())["code"] == "invalid"
    assert await db(lambda: Feedback.objects.unscoped().count()) == 0
    await communicator.disconnect()


async def test_the_widget_sees_message_numbers_of_its_own_conversation_only(tenant_a, tenant_b):
    # Primary keys are one sequence over every tenant; the widget must not see them (they tell
    # a visitor how many messages every other company exchanges).
    await db(conversation_with_messages, tenant_b, 7)
    communicator, _ = await open_chat(tenant_a)
    echo = await send_message(communicator, "hello", "h1")
    before, done = await receive_answer(communicator)
    stored = await db(lambda: list(Message.objects.for_tenant(tenant_a.tenant).order_by("seq")))
    assert [m.seq for m in stored] == [1, 2]
    assert stored[0].pk > 7  # the primary keys that would have leaked
    assert echo["message"]["id"] == 1 and done["message"]["id"] == 2
    assert {f["message_id"] for f in before if f["type"] == "token"} <= {2}
    conversation_id = echo["conversation_id"]
    await communicator.disconnect()
    communicator, ready = await open_chat(tenant_a, conversation=conversation_id, since=1)
    assert [m["id"] for m in ready["messages"]] == [2]
    await communicator.disconnect()
