"""The chat websocket protocol (docs/websocket.md) against real PostgreSQL and Redis.

The assistant runs in its model-free echo mode here; answers from the real model are in
apps/assistant/tests/test_chat_assistant.py.
"""

from __future__ import annotations

import json
import random

import pytest

from apps.conversations import services
from apps.conversations.models import Conversation, Message, MessageRole
from apps.core.asyncdb import db_async as sync_to_async
from apps.events.models import Event
from apps.tenants.services import end_user_token_sign
from tests.support.chat import (
    chat_communicator,
    chat_settings,  # noqa: F401
    conversation_with_messages,
    drain,
    expect_close,
    open_chat,
    origin_of,
    receive_answer,
    receive_until,
    send_message,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("chat_settings")]


def random_address() -> str:
    # Counters live in Redis for a minute: a fresh address keeps runs from counting together.
    return f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"


@sync_to_async
def db(fn, *args, **kwargs):
    return fn(*args, **kwargs)


# --- Connecting -------------------------------------------------------------------------------


async def test_connect_without_conversation_gets_empty_ready(tenant_a):
    communicator, ready = await open_chat(tenant_a)
    widget = ready.pop("widget")
    assert ready == {"type": "ready", "conversation_id": None, "status": "open", "messages": []}
    assert widget["accent_color"] == tenant_a.widget_key.accent_color
    await communicator.disconnect()


async def test_wrong_origin_is_refused_with_4403(tenant_a):
    communicator = chat_communicator(key=tenant_a.widget_key.key, origin="https://evil.example.com")
    connected, _ = await communicator.connect()
    assert connected  # accepted, then closed, so the browser sees the code
    assert await expect_close(communicator) == 4403


async def test_missing_origin_is_refused(tenant_a):
    communicator = chat_communicator(key=tenant_a.widget_key.key, origin=None)
    await communicator.connect()
    assert await expect_close(communicator) == 4403


async def test_unknown_key_is_refused(tenant_a):
    communicator = chat_communicator(key="pk_does-not-exist", origin=origin_of(tenant_a))
    await communicator.connect()
    assert await expect_close(communicator) == 4403


async def test_inactive_key_is_refused(tenant_a):
    tenant_a.widget_key.is_active = False
    await db(tenant_a.widget_key.save)
    communicator = chat_communicator(key=tenant_a.widget_key.key, origin=origin_of(tenant_a))
    await communicator.connect()
    assert await expect_close(communicator) == 4403


async def test_key_of_inactive_tenant_is_refused(tenant_a):
    tenant_a.tenant.is_active = False
    await db(tenant_a.tenant.save)
    communicator = chat_communicator(key=tenant_a.widget_key.key, origin=origin_of(tenant_a))
    await communicator.connect()
    assert await expect_close(communicator) == 4403


async def test_other_tenants_key_cannot_open_a_conversation(tenant_a, tenant_b):
    conversation = await db(conversation_with_messages, tenant_a, 2)
    # Tenant B's key from tenant B's own origin, naming tenant A's conversation.
    communicator = chat_communicator(
        key=tenant_b.widget_key.key,
        origin=origin_of(tenant_b),
        conversation=str(conversation.public_id),
    )
    await communicator.connect()
    assert await expect_close(communicator) == 4403
    # And tenant A's key from tenant B's origin is refused before anything is looked up.
    communicator = chat_communicator(
        key=tenant_a.widget_key.key,
        origin=origin_of(tenant_b),
        conversation=str(conversation.public_id),
    )
    await communicator.connect()
    assert await expect_close(communicator) == 4403


async def test_malformed_or_unknown_conversation_id_is_refused(tenant_a):
    for conversation_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        communicator = chat_communicator(
            key=tenant_a.widget_key.key, origin=origin_of(tenant_a), conversation=conversation_id
        )
        await communicator.connect()
        assert await expect_close(communicator) == 4403


async def test_forged_or_expired_token_is_refused(tenant_a, tenant_b):
    forged = await db(end_user_token_sign, tenant=tenant_b.tenant, external_id="u1")
    expired = await db(end_user_token_sign, tenant=tenant_a.tenant, external_id="u1", ttl=-10)
    for token in (forged, expired, "garbage"):
        communicator = chat_communicator(
            key=tenant_a.widget_key.key, origin=origin_of(tenant_a), token=token
        )
        await communicator.connect()
        assert await expect_close(communicator) == 4403


async def test_conversation_of_another_customer_is_refused(tenant_a):
    alice_token = await db(end_user_token_sign, tenant=tenant_a.tenant, external_id="alice")
    bob_token = await db(end_user_token_sign, tenant=tenant_a.tenant, external_id="bob")
    alice, _ = await open_chat(tenant_a, token=alice_token)
    await send_message(alice, "hello", "a1")
    await drain(alice)
    conversation = await db(lambda: Conversation.objects.for_tenant(tenant_a.tenant).get())
    await alice.disconnect()

    for token in (bob_token, None):
        intruder = chat_communicator(
            key=tenant_a.widget_key.key,
            origin=origin_of(tenant_a),
            conversation=str(conversation.public_id),
            token=token,
        )
        await intruder.connect()
        assert await expect_close(intruder) == 4403

    again, ready = await open_chat(
        tenant_a, conversation=str(conversation.public_id), token=alice_token
    )
    assert [m["content"] for m in ready["messages"] if m["role"] == "customer"] == ["hello"]
    await again.disconnect()


# --- Frames -----------------------------------------------------------------------------------


async def test_bad_frames_get_an_error_and_the_socket_stays_open(tenant_a, settings):
    communicator, _ = await open_chat(tenant_a)
    bad_frames = [
        "this is not json",
        json.dumps([1, 2, 3]),
        json.dumps({"type": "launch_missiles"}),
        json.dumps({"no": "type"}),
        json.dumps({"type": "message", "client_id": "c1"}),
        json.dumps({"type": "message", "client_id": "c1", "text": "   "}),
        json.dumps({"type": "message", "client_id": "", "text": "hi"}),
        json.dumps({"type": "message", "client_id": "x" * 65, "text": "hi"}),
        json.dumps(
            {
                "type": "message",
                "client_id": "c2",
                "text": "x" * (settings.CHAT_MAX_MESSAGE_CHARS + 1),
            }
        ),
        json.dumps({"type": "typing", "active": "yes"}),
        json.dumps({"type": "feedback", "message_id": "1", "rating": "up"}),
        json.dumps({"type": "feedback", "message_id": 1, "rating": "meh"}),
        json.dumps({"type": "csat", "score": 9}),
        json.dumps({"type": "csat", "score": 4}),  # no conversation yet
    ]
    for frame in bad_frames:
        await communicator.send_to(text_data=frame)
        reply = await communicator.receive_json_from(timeout=5)
        assert reply["type"] == "error" and reply["code"] == "invalid", (frame, reply)
        assert reply["message"]
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert (await communicator.receive_json_from())["code"] == "invalid"
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    assert await db(lambda: Message.objects.for_tenant(tenant_a.tenant).count()) == 0
    await communicator.disconnect()


async def test_oversized_message_error_names_its_client_id(tenant_a, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    communicator, _ = await open_chat(tenant_a)
    await communicator.send_json_to({"type": "message", "client_id": "long-1", "text": "x" * 11})
    reply = await communicator.receive_json_from()
    assert reply["code"] == "invalid" and reply["client_id"] == "long-1"
    await communicator.disconnect()


# --- Messages -------------------------------------------------------------------------------


async def test_first_message_creates_the_conversation_and_is_stored_before_the_answer(tenant_a):
    communicator, _ = await open_chat(tenant_a, lang="de")
    await communicator.send_json_to({"type": "message", "client_id": "c-1", "text": "Hallo!"})
    before, done = await receive_answer(communicator)
    status = next(f for f in before if f["type"] == "status")
    echo = next(f for f in before if f["type"] == "message")
    assert before.index(status) < before.index(echo)
    assert echo["message"]["client_id"] == "c-1" and echo["message"]["role"] == "customer"
    assert echo["conversation_id"] == status["conversation_id"]
    assert set(echo["message"]) == {
        "id",
        "role",
        "content",
        "created_at",
        "citations",
        "client_id",
        "status",
    }
    assert done["message"]["id"] > echo["message"]["id"]

    conversation = await db(lambda: Conversation.objects.for_tenant(tenant_a.tenant).get())
    assert str(conversation.public_id) == status["conversation_id"]
    assert conversation.language == "de" and conversation.widget_key_id == tenant_a.widget_key.pk
    assert conversation.last_message_at is not None
    roles = await db(lambda: list(conversation.messages.values_list("role", flat=True)))
    assert roles == [MessageRole.CUSTOMER, MessageRole.ASSISTANT]
    types = await db(
        lambda: sorted(Event.objects.for_tenant(tenant_a.tenant).values_list("type", flat=True))
    )
    assert types == ["conversation.created", "message.created", "message.created"]
    await communicator.disconnect()


async def test_repeated_client_id_is_stored_once_and_echoed_again(tenant_a):
    communicator, _ = await open_chat(tenant_a)
    first = await send_message(communicator, "where is my order?", "same-id")
    await receive_answer(communicator)
    await communicator.send_json_to(
        {"type": "message", "client_id": "same-id", "text": "where is my order?"}
    )
    _, second = await receive_until(communicator, "message")
    assert second["message"]["id"] == first["message"]["id"]
    assert await communicator.receive_nothing(timeout=0.5)  # not answered twice
    count = await db(
        lambda: Message.objects.for_tenant(tenant_a.tenant).filter(role="customer").count()
    )
    assert count == 1
    await communicator.disconnect()


async def test_reconnect_with_since_replays_exactly_the_missed_messages(tenant_a):
    conversation = await db(conversation_with_messages, tenant_a, 5)
    ids = await db(lambda: list(conversation.messages.order_by("id").values_list("seq", flat=True)))
    assert ids == [1, 2, 3, 4, 5]

    communicator, ready = await open_chat(
        tenant_a, conversation=str(conversation.public_id), since=ids[1]
    )
    assert [m["id"] for m in ready["messages"]] == ids[2:]
    assert ready["conversation_id"] == str(conversation.public_id)
    await communicator.disconnect()

    communicator, ready = await open_chat(tenant_a, conversation=str(conversation.public_id))
    assert [m["id"] for m in ready["messages"]] == ids  # no cursor: the full history
    await communicator.disconnect()

    communicator, ready = await open_chat(
        tenant_a, conversation=str(conversation.public_id), since=ids[-1]
    )
    assert ready["messages"] == []
    await communicator.disconnect()


async def test_messages_sent_while_away_arrive_with_the_next_ready(tenant_a):
    communicator, _ = await open_chat(tenant_a)
    echo = await send_message(communicator, "hello", "h1")
    _, done = await receive_answer(communicator)
    conversation_id = echo["conversation_id"]
    await communicator.disconnect()

    conversation = await db(lambda: Conversation.objects.for_tenant(tenant_a.tenant).get())
    agent_reply = await db(
        services.message_post_agent,
        conversation=conversation,
        agent=tenant_a.agent,
        content="Hi, Alex here.",
    )
    communicator, ready = await open_chat(
        tenant_a, conversation=conversation_id, since=done["message"]["id"]
    )
    assert [m["id"] for m in ready["messages"]] == [agent_reply.seq]
    assert ready["status"] == "with_agent"
    await communicator.disconnect()


# --- Rate limits ---------------------------------------------------------------------------------


async def test_too_many_connections_from_one_client_are_closed_with_4429(tenant_a, settings):
    settings.CHAT_RATE_CONNECTS_PER_CLIENT = 2
    address = random_address()
    sockets = []
    for _ in range(2):
        communicator, _ = await open_chat(tenant_a, client=address)
        sockets.append(communicator)
    third = chat_communicator(
        key=tenant_a.widget_key.key, origin=origin_of(tenant_a), client=address
    )
    await third.connect()
    frame = await third.receive_json_from()
    assert frame["type"] == "error" and frame["code"] == "rate_limited"
    assert await expect_close(third) == 4429
    # Another client is not affected.
    other, _ = await open_chat(tenant_a, client=random_address())
    for communicator in [*sockets, other]:
        await communicator.disconnect()


async def test_too_many_messages_get_rate_limited_errors_without_closing(tenant_a, settings):
    settings.CHAT_RATE_MESSAGES_PER_CLIENT = 2
    communicator, _ = await open_chat(tenant_a, client=random_address())
    for i in range(2):
        await send_message(communicator, f"m{i}", f"c{i}")
        await receive_answer(communicator)
    await communicator.send_json_to({"type": "message", "client_id": "c9", "text": "one more"})
    frame = await communicator.receive_json_from()
    assert frame == {
        "type": "error",
        "code": "rate_limited",
        "message": frame["message"],
        "client_id": "c9",
    }
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_per_key_message_limit_counts_across_clients(tenant_a, settings):
    settings.CHAT_RATE_MESSAGES_PER_KEY = 1
    first, _ = await open_chat(tenant_a)
    await send_message(first, "m", "c1")
    second, _ = await open_chat(tenant_a)
    await second.send_json_to({"type": "message", "client_id": "c2", "text": "hi"})
    assert (await second.receive_json_from())["code"] == "rate_limited"
    await first.disconnect()
    await second.disconnect()
