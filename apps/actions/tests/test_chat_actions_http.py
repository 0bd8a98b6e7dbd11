"""Confirming an action over HTTP (`POST /chat/confirm`), for widgets and pages without a
websocket: the same one-time run, the same owner checks, a readable 4xx for bad input. The
question goes through `POST /chat/ask`; the order service is real, on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import AsyncClient

from apps.actions.models import ActionCall, CallStatus
from apps.core.asyncdb import db_async
from tests.support.actions import alice, token_for
from tests.support.chat import origin_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


async def post(world, path: str, body: dict, *, key: str | None = None):
    return await AsyncClient().post(
        path,
        data=json.dumps(body),
        content_type="application/json",
        headers={"Origin": origin_of(world), "X-Widget-Key": key or world.widget_key.key},
    )


async def ask_cancel(world) -> tuple[str, str]:
    """Alice asks to cancel her order over HTTP; returns (conversation_id, call_id)."""
    response = await post(
        world, "/chat/ask", {"text": "Please cancel my order NW-517204", "token": alice(world)}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["answer"]["action"]["state"] == "pending", body
    return body["conversation_id"], body["answer"]["action"]["call_id"]


def calls(tenant) -> list[ActionCall]:
    return list(ActionCall.objects.for_tenant(tenant).order_by("id"))


async def test_confirm_over_http_runs_the_call_once(actions_a, order_service):
    conversation_id, call_id = await ask_cancel(actions_a)
    assert order_service.requests == []
    body = {"conversation_id": conversation_id, "call_id": call_id, "token": alice(actions_a)}

    # A double click: two confirmations at once.
    first, second = await asyncio.gather(
        post(actions_a, "/chat/confirm", body), post(actions_a, "/chat/confirm", body)
    )
    assert first.status_code == second.status_code == 200
    replies = sorted([first.json(), second.json()], key=lambda r: bool(r.get("duplicate")))
    ran, repeat = replies
    assert ran["type"] == "action_status" and ran["status"] == CallStatus.SUCCEEDED
    assert not ran.get("duplicate")
    assert "cancelled" in ran["answer"]["content"]
    assert ran["answer"]["citations"][0]["title"] == "Cancel order: order number NW-517204, live"
    assert repeat["duplicate"] is True and repeat["status"] == CallStatus.SUCCEEDED
    assert repeat["answer"] is None
    assert [r[0:2] for r in order_service.requests] == [("POST", "/orders/NW-517204/cancel")]
    [call] = await db_async(calls)(actions_a.tenant)
    assert call.status == CallStatus.SUCCEEDED and call.confirmed_by == "customer cust_alice"


async def test_decline_over_http_changes_nothing(actions_a, order_service):
    conversation_id, call_id = await ask_cancel(actions_a)
    response = await post(
        actions_a,
        "/chat/confirm",
        {
            "conversation_id": conversation_id,
            "call_id": call_id,
            "accept": False,
            "token": alice(actions_a),
        },
    )
    assert response.status_code == 200
    assert response.json()["status"] == CallStatus.DECLINED
    assert "haven't done anything" in response.json()["answer"]["content"]
    assert order_service.requests == []
    assert order_service.book.orders["NW-517204"]["status"] == "processing"


async def test_only_the_customer_who_asked_can_confirm(actions_a, tenant_b, order_service):
    conversation_id, call_id = await ask_cancel(actions_a)
    body = {"conversation_id": conversation_id, "call_id": call_id}
    bob = token_for(actions_a, "cust_bob", "bob@example.com")
    refused = [
        await post(actions_a, "/chat/confirm", body),  # anonymous
        await post(actions_a, "/chat/confirm", {**body, "token": bob}),  # another customer
        # Tenant B's widget, with a token of its own for a customer of the same name.
        await post(
            tenant_b,
            "/chat/confirm",
            {**body, "token": token_for(tenant_b, "cust_alice", "alice@example.com")},
        ),
    ]
    for response in refused:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["message"] == "This widget key may not be used here."
    assert order_service.requests == []
    [call] = await db_async(calls)(actions_a.tenant)
    assert call.status == CallStatus.PENDING_CONFIRMATION


async def test_a_call_of_another_conversation_is_unknown(actions_a, order_service):
    _, call_id = await ask_cancel(actions_a)
    other_conversation, _ = await ask_cancel(actions_a)
    response = await post(
        actions_a,
        "/chat/confirm",
        {"conversation_id": other_conversation, "call_id": call_id, "token": alice(actions_a)},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "unknown" and response.json()["answer"] is None
    assert order_service.requests == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"conversation_id": "c"}, "call_id is required"),
        ({"conversation_id": "c", "call_id": "x", "accept": "yes"}, "accept must be true or false"),
        ({"call_id": "x"}, "conversation_id is required"),
        ({"conversation_id": 5, "call_id": "x"}, "conversation_id must be a string"),
    ],
)
async def test_bad_confirmations_get_a_readable_400(actions_a, body, message):
    response = await post(actions_a, "/chat/confirm", body)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]["message"]


async def test_confirm_only_takes_post(actions_a):
    response = await AsyncClient().get("/chat/confirm", headers={"Origin": origin_of(actions_a)})
    assert response.status_code == 405
    assert response.json()["error"]["message"] == "Use POST."
