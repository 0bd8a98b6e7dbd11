"""Actions in the chat, end to end: the widget websocket → the answer engine → a real HTTP order
service on loopback (apps/actions/demo_orders.py), with real PostgreSQL and Redis.

The assistant runs extractive (no language model) and the model never fills parameters here:
the deterministic matcher chooses the action and finds the order number.
"""

from __future__ import annotations

import asyncio

import pytest

from apps.actions.models import Action, ActionCall, CallStatus
from apps.conversations.models import Conversation, Message, MessageRole
from apps.core.asyncdb import db_async
from apps.core.observability.metrics import ACTION_CALLS
from apps.events.models import Event
from tests.support.actions import alice, install_actions, token_for
from tests.support.chat import (
    chat_communicator,
    drain,
    expect_close,
    open_chat,
    origin_of,
    receive_answer,
    receive_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


async def ask(communicator, text: str, client_id: str) -> dict:
    await communicator.send_json_to({"type": "message", "client_id": client_id, "text": text})
    _, done = await receive_answer(communicator, timeout=120)
    return done["message"]


def calls(tenant) -> list[ActionCall]:
    return list(ActionCall.objects.for_tenant(tenant).order_by("id"))


def counter(status: str, outcome: str) -> float:
    return ACTION_CALLS.labels(status=status, outcome=outcome)._value.get()


async def test_own_order_is_answered_with_the_live_status_cited(actions_a, order_service):
    before = counter("succeeded", "succeeded")
    chat, _ = await open_chat(actions_a, token=alice(actions_a))
    answer = await ask(chat, "Where is my order NW-482913?", "c1")
    await chat.disconnect()

    assert "shipped" in answer["content"] and "DHL" in answer["content"], answer
    assert answer["content"].endswith("[1]")
    assert answer["citations"] == [
        {
            "n": 1,
            "title": "Order status: order number NW-482913, live",
            "url": None,
            "snippet": answer["citations"][0]["snippet"],
        }
    ]
    assert "2026-12-04" in answer["citations"][0]["snippet"]
    # The call went to the order system with the customer's email from the signed token and the
    # stored (encrypted) header.
    assert len(order_service.requests) == 1
    method, path, headers = order_service.requests[0]
    assert (method, path) == ("GET", "/orders/NW-482913?email=alice%40example.com")
    assert headers["Authorization"] == "Bearer demo-orders-token"
    [call] = await db_async(calls)(actions_a.tenant)
    assert call.status == CallStatus.SUCCEEDED and call.action_name == "order_status"
    assert call.params == {"order_number": "NW-482913", "email": "alice@example.com"}
    assert call.result["status"] == "shipped" and call.latency_ms is not None
    stored = await db_async(
        lambda: Message.objects.for_tenant(actions_a.tenant).get(
            role=MessageRole.ASSISTANT, conversation__public_id=answer_conversation(call)
        )
    )()
    assert stored.grounding["outcome"] == "action"
    assert stored.citations[0]["action_call_id"] == str(call.public_id)
    assert await db_async(
        lambda: (
            Event.objects.for_tenant(actions_a.tenant)
            .filter(type="action.executed", payload__call_id=str(call.public_id))
            .exists()
        )
    )()
    assert counter("succeeded", "succeeded") == before + 1


def answer_conversation(call: ActionCall) -> str:
    return str(
        Conversation.objects.for_tenant(call.tenant_id).get(pk=call.conversation_id).public_id
    )


async def test_another_customers_order_is_refused(actions_a, order_service):
    chat, _ = await open_chat(actions_a, token=alice(actions_a))
    # NW-300118 is Bob's. Naming Bob's email does not help: the email comes from the token.
    answer = await ask(chat, "My email is bob@example.com, where is my order NW-300118?", "c1")
    await chat.disconnect()

    assert "couldn't find order number NW-300118" in answer["content"]
    for leaked in ("delivered", "UPS", "1Z999", "Road 700"):
        assert leaked not in answer["content"]
    assert answer["citations"] == []
    assert [r[1] for r in order_service.requests] == ["/orders/NW-300118?email=alice%40example.com"]
    [call] = await db_async(calls)(actions_a.tenant)
    assert call.status == CallStatus.FAILED and call.http_status == 404 and call.result == {}


async def test_anonymous_visitor_cannot_run_an_identity_bound_action(actions_a, order_service):
    chat, _ = await open_chat(actions_a)
    answer = await ask(chat, "Where is my order NW-482913?", "c1")
    await chat.disconnect()

    assert "signed-in customer" in answer["content"]
    assert order_service.requests == []
    [call] = await db_async(calls)(actions_a.tenant)
    assert call.status == CallStatus.REFUSED


async def test_a_visitor_who_signs_in_mid_conversation_gets_their_own_orders(
    actions_a, order_service, tenant_b
):
    chat, _ = await open_chat(actions_a)
    answer = await ask(chat, "Where is my order NW-482913?", "c1")
    await chat.disconnect()
    assert "signed-in customer" in answer["content"]
    [refused] = await db_async(calls)(actions_a.tenant)
    conversation_id = await db_async(answer_conversation)(refused)

    # The page signs them in; the widget reconnects to the same conversation with the token.
    chat, ready = await open_chat(actions_a, token=alice(actions_a), conversation=conversation_id)
    assert ready["conversation_id"] == conversation_id
    answer = await ask(chat, "Where is my order NW-482913?", "c2")
    await chat.disconnect()
    assert "shipped" in answer["content"], answer
    conversation = await db_async(
        lambda: (
            Conversation.objects.for_tenant(actions_a.tenant)
            .select_related("contact")
            .get(public_id=conversation_id)
        )
    )()
    assert conversation.contact.external_id == "cust_alice"
    assert conversation.contact.email == "alice@example.com"

    # Now it is Alice's: neither an anonymous visitor nor another customer can open it.
    bob = token_for(actions_a, "cust_bob", "bob@example.com")
    for token in (None, bob):
        intruder = chat_communicator(
            key=actions_a.widget_key.key,
            origin=origin_of(actions_a),
            conversation=conversation_id,
            token=token,
        )
        connected, _ = await intruder.connect()
        assert connected  # accepted, then closed, so the browser sees the code
        assert await expect_close(intruder) == 4403
    [(method, path, _)] = order_service.requests  # one call, with Alice's email
    assert (method, path) == ("GET", "/orders/NW-482913?email=alice%40example.com")


async def test_missing_order_number_is_asked_for_then_used(actions_a, order_service):
    chat, _ = await open_chat(actions_a, token=alice(actions_a))
    first = await ask(chat, "Where is my order?", "c1")
    assert first["content"] == "What is your order number (for example NW-482913)?"
    assert order_service.requests == []
    second = await ask(chat, "It's NW-517204", "c2")
    await chat.disconnect()

    assert "processing" in second["content"] and second["citations"][0]["title"].endswith(
        "NW-517204, live"
    )
    statuses = [c.status for c in await db_async(calls)(actions_a.tenant)]
    # The question that waited for the number is closed; the lookup ran once.
    assert statuses == [CallStatus.DECLINED, CallStatus.SUCCEEDED]


async def test_cancel_waits_for_confirmation_and_runs_once_on_a_doubled_frame(
    actions_a, order_service
):
    chat, _ = await open_chat(actions_a, token=alice(actions_a))
    answer = await ask(chat, "Please cancel my order NW-517204", "c1")
    assert answer["action"]["state"] == "pending" and answer["action"]["title"] == "Cancel order"
    assert "Confirm" in answer["content"]
    assert order_service.requests == []  # nothing changes before the customer confirms
    [pending] = await db_async(calls)(actions_a.tenant)
    assert pending.status == CallStatus.PENDING_CONFIRMATION
    # The pending parameters are kept encrypted, not readable in the row.
    assert "NW-517204" not in pending.pending_encrypted

    frame = {"type": "confirm", "call_id": answer["action"]["call_id"], "accept": True}
    await chat.send_json_to(frame)
    await chat.send_json_to(frame)
    before, done = await receive_until(chat, "message_done", timeout=60)
    statuses = [f for f in before if f["type"] == "action_status"]
    frames = await drain(chat, quiet=1.5)
    statuses += [f for f in frames if f["type"] == "action_status"]
    await chat.disconnect()

    assert "cancelled" in done["message"]["content"]
    assert done["message"]["citations"][0]["title"] == "Cancel order: order number NW-517204, live"
    assert [r[0:2] for r in order_service.requests] == [("POST", "/orders/NW-517204/cancel")]
    assert order_service.book.cancellations == ["NW-517204"]
    assert sorted(bool(s.get("duplicate")) for s in statuses) == [False, True]
    assert all(s["status"] == CallStatus.SUCCEEDED for s in statuses)
    [call] = await db_async(calls)(actions_a.tenant)
    assert call.status == CallStatus.SUCCEEDED
    assert call.confirmed_by == "customer cust_alice" and call.confirmed_at is not None
    assert call.pending_encrypted == ""
    # One result message; on replay the question no longer offers the confirm button.
    conversation_id = await db_async(answer_conversation)(call)
    replay, ready = await open_chat(
        actions_a, token=alice(actions_a), conversation=conversation_id, since=0
    )
    await replay.disconnect()
    asked = [m for m in ready["messages"] if m.get("action")]
    assert [m["action"]["state"] for m in asked] == [CallStatus.SUCCEEDED]
    assert [m["role"] for m in ready["messages"]] == ["customer", "assistant", "assistant"]


async def test_declined_cancel_changes_nothing(actions_a, order_service):
    chat, _ = await open_chat(actions_a, token=alice(actions_a))
    answer = await ask(chat, "Cancel order NW-517204 please", "c1")
    await chat.send_json_to(
        {"type": "confirm", "call_id": answer["action"]["call_id"], "accept": False}
    )
    # The result (to the conversation's group) and the status (to this socket) may come in
    # either order.
    before, done = await receive_until(chat, "message_done", timeout=60)
    frames = before + await drain(chat, quiet=1.0)
    await chat.disconnect()

    assert "haven't done anything" in done["message"]["content"]
    [status] = [f for f in frames if f["type"] == "action_status"]
    assert status["status"] == CallStatus.DECLINED
    assert order_service.requests == []
    assert order_service.book.orders["NW-517204"]["status"] == "processing"


async def test_slow_order_system_gets_a_plain_answer_and_the_offer_of_a_person(
    actions_a, order_service
):
    await db_async(
        lambda: Action.objects.for_tenant(actions_a.tenant).update(timeout_seconds=1.0)
    )()
    order_service.delay = 3.0
    chat, _ = await open_chat(actions_a, token=alice(actions_a))
    answer = await ask(chat, "Where is my order NW-482913?", "c1")
    await chat.disconnect()

    assert "couldn't get an answer from our systems" in answer["content"]
    assert "Talk to a person" in answer["content"]
    [call] = await db_async(calls)(actions_a.tenant)
    assert call.status == CallStatus.FAILED and call.error.startswith("timeout")
    # No message lost: the question and the answer are both stored.
    roles = await db_async(
        lambda: list(
            Message.objects.for_tenant(actions_a.tenant)
            .order_by("id")
            .values_list("role", flat=True)
        )
    )()
    assert roles == [MessageRole.CUSTOMER, MessageRole.ASSISTANT]


async def test_failing_cancel_is_not_retried(actions_a, order_service):
    order_service.fail_with = 503
    chat, _ = await open_chat(actions_a, token=alice(actions_a))
    answer = await ask(chat, "Cancel my order NW-517204", "c1")
    await chat.send_json_to(
        {"type": "confirm", "call_id": answer["action"]["call_id"], "accept": True}
    )
    _, done = await receive_until(chat, "message_done", timeout=60)
    await drain(chat, quiet=1.0)
    await chat.disconnect()

    assert "won't retry it" in done["message"]["content"]
    assert "Talk to a person" in done["message"]["content"]
    assert len(order_service.requests) == 1
    [call] = await db_async(calls)(actions_a.tenant)
    assert call.status == CallStatus.FAILED and call.http_status == 503


async def test_private_address_is_refused_unless_the_tenant_allows_it(
    tenant_a, order_service, action_settings
):
    await db_async(install_actions)(tenant_a, order_service, allow_private=False)
    chat, _ = await open_chat(tenant_a, token=alice(tenant_a))
    answer = await ask(chat, "Where is my order NW-482913?", "c1")
    assert "couldn't get an answer" in answer["content"]
    assert order_service.requests == []  # never connected to 127.0.0.1
    [call] = await db_async(calls)(tenant_a.tenant)
    assert call.status == CallStatus.REFUSED and "refused_address" in call.error

    def allow() -> None:
        tenant_a.tenant.settings = {"actions_allow_private": True}
        tenant_a.tenant.save(update_fields=["settings"])

    await db_async(allow)()
    answer = await ask(chat, "Where is my order NW-482913?", "c2")
    await chat.disconnect()
    assert "shipped" in answer["content"]
    assert len(order_service.requests) == 1


async def test_tenant_b_widget_cannot_run_or_confirm_tenant_a_actions(
    actions_a, tenant_b, order_service
):
    chat_a, _ = await open_chat(actions_a, token=alice(actions_a))
    answer = await ask(chat_a, "Cancel my order NW-517204", "c1")
    await chat_a.disconnect()
    call_id = answer["action"]["call_id"]

    token_b = token_for(tenant_b, "cust_alice", "alice@example.com")
    chat_b, _ = await open_chat(tenant_b, token=token_b)
    reply = await ask(chat_b, "Where is my order NW-482913?", "b1")
    assert "shipped" not in reply["content"]
    await chat_b.send_json_to({"type": "confirm", "call_id": call_id, "accept": True})
    _, status = await receive_until(chat_b, "action_status", timeout=30)
    await chat_b.disconnect()

    assert status["status"] == "unknown"
    assert order_service.requests == []
    [call] = await db_async(calls)(actions_a.tenant)
    assert call.status == CallStatus.PENDING_CONFIRMATION
    assert await db_async(lambda: ActionCall.objects.for_tenant(tenant_b.tenant).count())() == 0


async def test_article_questions_run_no_action(actions_a, order_service):
    chat, _ = await open_chat(actions_a, token=alice(actions_a))
    await ask(chat, "How long does standard shipping take?", "c1")
    await chat.disconnect()
    assert order_service.requests == []
    assert await db_async(calls)(actions_a.tenant) == []


async def test_confirm_frame_is_validated(actions_a):
    chat, _ = await open_chat(actions_a, token=alice(actions_a))
    await chat.send_json_to({"type": "confirm"})
    error = await chat.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "invalid"
    await chat.send_json_to({"type": "confirm", "call_id": "x", "accept": "yes"})
    error = await chat.receive_json_from(timeout=10)
    assert error["type"] == "error" and "accept" in error["message"]
    await asyncio.sleep(0)
    await chat.disconnect()
