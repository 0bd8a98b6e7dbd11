"""The grounded strategy end to end over the websocket, with a scripted model.

The model is a real OpenAI-compatible HTTP server on loopback that streams a script, so the
test decides exactly which sentence is invented; everything else (consumer, retrieval on the
real pipeline, the guard, persistence, frames) is the product's own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.conversations.models import Message, MessageRole
from apps.core.asyncdb import db_async as sync_to_async
from tests.support.chat import open_chat, receive_answer
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("knowledge_store"),
]

RETURNS = (
    "# Returns and refunds\n\n"
    "You can return any bike within 30 days of delivery for a full refund. "
    "Start a return from Orders, then Return item; we email a prepaid shipping label. "
    "Refunds reach your card within 5 business days after the bike arrives at our warehouse."
)


class ScriptedModel:
    """An OpenAI-compatible chat endpoint that streams `script` a few characters at a time."""

    def __init__(self) -> None:
        self.script = ""
        self.requests: list[dict] = []
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model.requests.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                text = model.script
                for i in range(0, len(text), 6):
                    chunk = {
                        "id": "x",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": "scripted",
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"content": text[i : i + 6]},
                                "finish_reason": None,
                            }
                        ],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted_model(settings) -> Iterator[ScriptedModel]:
    model = ScriptedModel()
    settings.LLM_BASE_URL = model.base_url
    settings.ASSISTANT_MODE = "grounded"
    settings.CHAT_RATE_MESSAGES_PER_CLIENT = 0
    try:
        yield model
    finally:
        model.close()


@sync_to_async
def ingest(world, title, text, **kwargs):
    return ingest_text(tenant=world.tenant, title=title, text=text, **kwargs)


@sync_to_async
def last_answer(world) -> Message:
    return Message.objects.for_tenant(world.tenant).filter(role=MessageRole.ASSISTANT).last()


async def ask(communicator, text: str):
    await communicator.send_json_to({"type": "message", "client_id": "q1", "text": text})
    return await receive_answer(communicator, timeout=300)


async def test_invented_second_sentence_is_never_shown_and_the_answer_ends_extractive(
    tenant_a, scripted_model
):
    await ingest(tenant_a, "Returns and refunds", RETURNS, url="https://acme.example.com/returns")
    scripted_model.script = (
        "You can return your bike within 30 days of delivery [1]. "
        "Refunds are paid within 2 business days by cheque [1]. "
        "Call 555-0199 for help."
    )
    communicator, _ = await open_chat(tenant_a)
    before, done = await ask(communicator, "How long do refunds take after I return a bike?")

    tokens = [f["delta"] for f in before if f["type"] == "token"]
    streamed = "".join(tokens)
    assert tokens[0] == "You can return your bike within 30 days of delivery. [1]"
    assert "2 business days" not in streamed and "555-0199" not in streamed
    final = done["message"]
    assert final["content"] == streamed.strip()
    # The answer ends with the cited extractive sentence that holds the real fact.
    assert final["content"].endswith(
        "Refunds reach your card within 5 business days after the bike arrives at our "
        "warehouse. [1]"
    )
    # One citation per document, and only the document the answer used.
    assert [c["url"] for c in final["citations"]] == ["https://acme.example.com/returns"]

    stored = await last_answer(tenant_a)
    assert stored.strategy == "grounded"
    assert stored.grounding["outcome"] == "fell_back"
    assert stored.grounding["reason"] == "invented_fact"
    [dropped] = stored.grounding["dropped"]
    assert dropped["sentence"].startswith("Refunds are paid within 2 business days")
    assert stored.decision == "extractive" and stored.status == "complete"
    # The model was asked once, with the best sentences only and the repetition penalties.
    [request] = scripted_model.requests
    assert request["frequency_penalty"] > 0 and request["repeat_penalty"] > 1
    assert "within 30 days of delivery" in request["messages"][-1]["content"]
    await communicator.disconnect()


async def test_a_fully_grounded_answer_streams_sentence_by_sentence_with_its_citation(
    tenant_a, scripted_model
):
    await ingest(tenant_a, "Returns and refunds", RETURNS, url="https://acme.example.com/returns")
    scripted_model.script = (
        "<p>You have 30 days from delivery to return a bike [2].</p> "
        "Start a return from Orders, then Return item."
    )
    communicator, _ = await open_chat(tenant_a)
    before, done = await ask(communicator, "How many days do I have to return a bike?")
    tokens = [f["delta"] for f in before if f["type"] == "token"]
    assert tokens == [
        "You have 30 days from delivery to return a bike. [1]",
        " Start a return from Orders, then Return item. [1]",
    ]
    final = done["message"]
    assert "<p>" not in final["content"]  # markup stripped before anything is shown
    assert len(final["citations"]) == 1 and final["citations"][0]["n"] == 1
    stored = await last_answer(tenant_a)
    assert stored.grounding["outcome"] == "grounded" and stored.decision == "answer"
    assert 0 < stored.answerability <= 1
    await communicator.disconnect()


async def test_a_looping_model_is_cut_and_the_extractive_answer_follows(tenant_a, scripted_model):
    await ingest(tenant_a, "Returns and refunds", RETURNS)
    scripted_model.script = "You can return any bike within 30 days of delivery. " * 4
    communicator, _ = await open_chat(tenant_a)
    _, done = await ask(communicator, "How many days do I have to return a bike?")
    final = done["message"]["content"]
    assert final.count("within 30 days of delivery") == 1, final
    stored = await last_answer(tenant_a)
    assert stored.grounding["dropped"][0]["reason"] == "repetition"
    await communicator.disconnect()


HOSTILE_LINKS = (
    "# Password reset\n\n"
    "Reset your password at https://evil.example/reset within 24 hours of the request. "
    "The [account page](https://evil.example/account) lists every device signed in. "
    "Our own help centre is at https://acme.example.com/help for everything else."
)


@pytest.mark.parametrize("mode", ["grounded", "extractive"])
async def test_a_documents_links_to_foreign_hosts_reach_the_customer_as_text(
    tenant_a, scripted_model, settings, mode
):
    """A hostile (or careless) document cannot put a clickable link to a host the tenant does
    not own in front of a customer: not through the model's answer, not through the extractive
    one. Links to the tenant's own sites stay links."""
    settings.ASSISTANT_MODE = mode
    await ingest(tenant_a, "Password reset", HOSTILE_LINKS, url="https://acme.example.com/pw")
    # The model repeats the document's link, bare and as Markdown.
    scripted_model.script = (
        "Reset your password at https://evil.example/reset within 24 hours of the request [1]. "
        "The [account page](https://evil.example/account) lists every device signed in [1]."
    )
    communicator, _ = await open_chat(tenant_a)
    before, done = await ask(communicator, "How do I reset my password?")

    streamed = "".join(f["delta"] for f in before if f["type"] == "token")
    final = done["message"]["content"]
    stored = (await last_answer(tenant_a)).content
    for text in (streamed, final, stored):
        # Every mention of the foreign host is a code span: shown, never clickable.
        assert "https://evil.example/reset" in text, text
        assert text.count("https://evil.example") == text.count("`https://evil.example")
        assert "](https://evil.example" not in text
    assert stored == final
    await communicator.disconnect()
