"""POST /chat/ask, GET|POST /chat/stream (server-sent events) and the /demo/ page."""

from __future__ import annotations

import json

import pytest
from django.test import AsyncClient

from apps.conversations.models import Conversation, Message
from apps.conversations.services import conversation_start, message_post_customer
from apps.core.asyncdb import db_async
from apps.tenants.models import WidgetKey
from apps.tenants.services import tenant_create
from apps.workspace import inbox_settings
from apps.workspace import services as workspace
from apps.workspace.models import ConversationInbox
from tests.support.chat import chat_settings, origin_of  # noqa: F401
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401
from tests.support.llm import llm_server, llm_settings  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("chat_settings")]


class Browser:
    """An AsyncClient that sends an Origin like a page would.

    (AsyncClient drops its default headers when a request passes headers, hence this.)
    """

    def __init__(self, origin: str | None) -> None:
        self.client = AsyncClient()
        self.origin = origin

    def _headers(self, extra: dict | None) -> dict:
        return {**({"Origin": self.origin} if self.origin else {}), **(extra or {})}

    async def get(self, path, data=None, headers=None):
        return await self.client.get(path, data, headers=self._headers(headers))

    async def post(self, path, data=None, content_type=None, headers=None):
        return await self.client.post(
            path, data=data, content_type=content_type, headers=self._headers(headers)
        )

    async def options(self, path, headers=None):
        return await self.client.options(path, headers=self._headers(headers))


def client_for(world=None, origin: str | None = None) -> Browser:
    return Browser(origin or (origin_of(world) if world is not None else None))


async def ask(client, key: str, **body):
    return await client.post(
        "/chat/ask",
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-Widget-Key": key},
    )


def parse_sse(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def read_stream(response) -> list[tuple[str, dict]]:
    raw = b"".join([chunk async for chunk in response.streaming_content])
    return parse_sse(raw)


# --- /chat/ask ------------------------------------------------------------------------------------


async def test_ask_stores_the_question_and_returns_the_answer(tenant_a):
    response = await ask(
        client_for(tenant_a), tenant_a.widget_key.key, text="Hello?", client_id="c1"
    )
    assert response.status_code == 201, response.content
    assert response["Access-Control-Allow-Origin"] == origin_of(tenant_a)
    body = response.json()
    assert body["message"]["role"] == "customer" and body["message"]["client_id"] == "c1"
    assert body["answer"]["role"] == "assistant" and body["answer"]["content"] == "Echo: Hello?"
    assert body["status"] == "open" and body["handoff"] is None
    conversation = await db_async(Conversation.objects.for_tenant(tenant_a.tenant).get)()
    assert str(conversation.public_id) == body["conversation_id"]

    again = await ask(
        client_for(tenant_a),
        tenant_a.widget_key.key,
        text="Hello?",
        client_id="c1",
        conversation_id=body["conversation_id"],
    )
    assert again.status_code == 200
    assert again.json()["message"]["id"] == body["message"]["id"]
    assert again.json()["answer"]["id"] == body["answer"]["id"]
    count = await db_async(Message.objects.for_tenant(tenant_a.tenant).count)()
    assert count == 2


async def test_ask_routes_by_the_page_it_was_sent_from(tenant_a):
    sales = await db_async(workspace.inbox_create)(tenant=tenant_a.tenant, name="Sales")
    await db_async(inbox_settings.routing_rule_create)(
        tenant=tenant_a.tenant, name="Pricing", url_contains="/pricing", inbox=sales
    )
    response = await ask(
        client_for(tenant_a),
        tenant_a.widget_key.key,
        text="How much is the pro plan?",
        page="https://acme.example.com/pricing?plan=pro",
    )
    assert response.status_code == 201, response.content
    routed = await db_async(
        lambda: (
            ConversationInbox.objects.for_tenant(tenant_a.tenant)
            .select_related("inbox")
            .get(conversation__public_id=response.json()["conversation_id"])
            .inbox
        )
    )()
    assert routed == sales
    bad = await ask(client_for(tenant_a), tenant_a.widget_key.key, text="Hi", page=["/x"])
    assert bad.status_code == 400 and "page" in bad.json()["error"]["message"]


async def test_ask_refuses_bad_origin_key_and_input_with_the_standard_error_body(
    tenant_a, settings
):
    key = tenant_a.widget_key.key
    cases = [
        (client_for(origin="https://evil.example.com"), key, {"text": "hi"}, 403, "forbidden"),
        (client_for(), key, {"text": "hi"}, 403, "forbidden"),  # no Origin at all
        (client_for(tenant_a), "pk_nope", {"text": "hi"}, 403, "forbidden"),
        (client_for(tenant_a), key, {}, 400, "invalid"),
        (client_for(tenant_a), key, {"text": "  "}, 400, "invalid"),
        (client_for(tenant_a), key, {"text": "x" * 5000}, 400, "invalid"),
        (client_for(tenant_a), key, {"text": "hi", "client_id": 5}, 400, "invalid"),
        (client_for(tenant_a), key, {"text": "hi", "token": "forged.token"}, 403, "forbidden"),
    ]
    for client, used_key, body, status, code in cases:
        response = await ask(client, used_key, **body)
        assert response.status_code == status, (body, response.content)
        error = response.json()["error"]
        assert error["code"] == code and error["message"] and "details" in error
    response = await client_for(tenant_a).post(
        "/chat/ask",
        data="{not json",
        content_type="application/json",
        headers={"X-Widget-Key": key},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    response = await client_for(tenant_a).get("/chat/ask")
    assert response.status_code == 405
    assert await db_async(Message.objects.for_tenant(tenant_a.tenant).count)() == 0


async def test_ask_with_another_tenants_conversation_is_refused(tenant_a, tenant_b):
    conversation = await db_async(conversation_start)(tenant=tenant_a.tenant)
    await db_async(message_post_customer)(conversation=conversation, text="secret", client_id="x")
    response = await ask(
        client_for(tenant_b),
        tenant_b.widget_key.key,
        text="show me",
        conversation_id=str(conversation.public_id),
    )
    assert response.status_code == 403
    assert "secret" not in response.content.decode()


async def test_ask_is_rate_limited_per_widget_key(tenant_a, settings):
    settings.CHAT_RATE_MESSAGES_PER_KEY = 1
    client = client_for(tenant_a)
    assert (await ask(client, tenant_a.widget_key.key, text="one")).status_code == 201
    response = await ask(client, tenant_a.widget_key.key, text="two")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"


async def test_cors_preflight_is_answered_for_allowed_origins_only(tenant_a):
    key = tenant_a.widget_key.key
    allowed = await client_for(tenant_a).options("/chat/ask", headers={"X-Widget-Key": key})
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == origin_of(tenant_a)
    assert "X-Widget-Key" in allowed["Access-Control-Allow-Headers"]
    refused = await client_for(origin="https://evil.example.com").options(
        "/chat/ask", headers={"X-Widget-Key": key}
    )
    assert "Access-Control-Allow-Origin" not in refused


# --- /chat/stream ------------------------------------------------------------------------------


async def test_stream_sends_the_message_the_answer_and_an_end_event(tenant_a):
    response = await client_for(tenant_a).get(
        "/chat/stream", {"key": tenant_a.widget_key.key, "text": "Hi there", "client_id": "s1"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = await read_stream(response)
    names = [name for name, _ in events]
    assert names == ["message", "done", "end"], events
    assert events[0][1]["message"]["client_id"] == "s1"
    assert events[1][1]["message"]["content"] == "Echo: Hi there"
    assert events[2][1] == {"status": "open"}


async def test_stream_refuses_a_bad_origin_with_a_json_error(tenant_a):
    response = await client_for(origin="https://evil.example.com").post(
        "/chat/stream",
        data=json.dumps({"text": "hi"}),
        content_type="application/json",
        headers={"X-Widget-Key": tenant_a.widget_key.key},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.integration
@pytest.mark.timeout(1800)
@pytest.mark.usefixtures("llm_settings", "knowledge_store")
async def test_stream_and_ask_against_the_real_llm_carry_tokens_and_citations(tenant_a, settings):
    settings.ASSISTANT_MODE = "llm"
    await db_async(ingest_text)(
        tenant=tenant_a.tenant,
        title="Returns and refunds",
        text="You can return any bike within 30 days of delivery for a full refund.",
        url="https://acme.example.com/returns",
    )
    response = await client_for(tenant_a).post(
        "/chat/stream",
        data=json.dumps({"text": "How long do I have to return a bike?"}),
        content_type="application/json",
        headers={"X-Widget-Key": tenant_a.widget_key.key},
    )
    events = await read_stream(response)
    names = [name for name, _ in events]
    assert names[0] == "message" and names[-2:] == ["done", "end"], names
    tokens = [data for name, data in events if name == "token"]
    assert len(tokens) >= 2 and names.index("token") < names.index("done")
    done = events[-2][1]["message"]
    assert done["content"] == "".join(t["delta"] for t in tokens)
    assert done["citations"][0]["url"] == "https://acme.example.com/returns"

    body = (await ask(client_for(tenant_a), tenant_a.widget_key.key, text="Refund time?")).json()
    assert body["answer"]["role"] == "assistant" and body["answer"]["citations"]


# --- /demo/ ------------------------------------------------------------------------------------


async def test_demo_page_is_404_without_the_demo_tenant(settings):
    settings.DEMO_TENANT_SLUG = "northwind"
    response = await AsyncClient().get("/demo/")
    assert response.status_code == 404


async def test_demo_page_embeds_the_widget_with_the_demo_tenants_key(settings, db):
    tenant = await db_async(tenant_create)(
        name="Northwind Bikes", slug="northwind", allowed_origins=["http://127.0.0.1:8000"]
    )
    key = await db_async(lambda: WidgetKey.objects.for_tenant(tenant).get().key)()
    response = await AsyncClient().get("/demo/")
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        f'<script src="/static/widget/supportai-widget.js" data-widget-key="{key}" async>' in html
    )
    assert "Northwind Bikes" in html and "How can we help?" in html
