"""The customer's whole chat in Debian's real headless Chromium, against a live server.

uvicorn serves the demo page and the websocket from the test database; the assistant answers
with the real local LLM server from knowledge ingested by the real pipeline. The customer opens
the widget on /demo/, asks, watches the answer stream in, sees its citation, rates it and asks
for a person. Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from apps.conversations.models import Conversation, Feedback, Message
from apps.tenants.models import WidgetKey
from apps.tenants.services import tenant_create
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401
from tests.support.llm import llm_server  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(1200),
]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
WIDGET = ROOT / "frontend" / "dist" / "supportai-widget.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RETURNS = (
    "# Returns and refunds\n\n"
    "You can return any bike within 30 days of delivery for a full refund. Start a return "
    "from your order page; we email you a prepaid shipping label. Refunds reach your card "
    "within 5 business days after the bike arrives at our warehouse."
)
SHIPPING = (
    "# Delivery\n\nWe ship to the EU, the UK and Switzerland. Standard delivery takes 3 to 5 "
    "business days; express delivery takes 1 to 2 business days."
)

# Records every state an assistant bubble goes through, however fast the tokens arrive.
WATCH_BUBBLES = """
() => {
  const root = document.querySelector('supportai-chat').shadowRoot;
  window.__bubbles = [];
  const record = () => {
    for (const el of root.querySelectorAll('[data-testid="message"][data-role="assistant"]')) {
      window.__bubbles.push({
        id: el.dataset.messageId, streaming: el.dataset.streaming,
        length: el.querySelector('.content').textContent.length,
      });
    }
  };
  new MutationObserver(record).observe(root, {subtree: true, childList: true,
    characterData: true, attributes: true});
}
"""


@pytest.fixture
def demo_server(monkeypatch, request, llm_server, knowledge_store, settings):  # noqa: F811
    """uvicorn on the test database with the LLM server and this test's vector store; the
    generative strategy (the model's tokens as they come: the streaming plumbing)."""
    return _demo_server(monkeypatch, request, llm_server, settings)


@pytest.fixture
def grounded_demo_server(monkeypatch, request, llm_server, knowledge_store, settings):  # noqa: F811
    """The same on the product's answer defaults: grounded strategy, answerability decision."""
    return _demo_server(
        monkeypatch,
        request,
        llm_server,
        settings,
        ASSISTANT_MODE="grounded",
        ASSISTANT_DECISION="answerability",
    )


def _demo_server(monkeypatch, request, llm_url: str, settings, **overrides: str):
    if not WIDGET.is_file():
        pytest.fail(f"{WIDGET} is missing: run `cd frontend && npm ci && npm run build`")
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: `apt-get install -y chromium` (or scripts/services.sh)"
        )
    for name, value in {
        "LLM_BASE_URL": llm_url,
        "LLM_MAX_TOKENS": "64",
        "LLM_TIMEOUT": "300",
        "ASSISTANT_MODE": "llm",
        # The 135M test model cannot route reliably; the decision call has its own tests.
        "ASSISTANT_DECISION": "rules",
        "ASSISTANT_CONDENSE_TIMEOUT": "300",
        "QDRANT_URL": "",
        "QDRANT_LOCAL_ENGINE": settings.QDRANT_LOCAL_ENGINE,
        "QDRANT_PATH": str(settings.QDRANT_PATH),
        "DEMO_TENANT_SLUG": "northwind",
        "CHAT_RATE_CONNECTS_PER_CLIENT": "0",
        "CHAT_RATE_MESSAGES_PER_CLIENT": "0",
        **overrides,
    }.items():
        monkeypatch.setenv(name, value)
    return request.getfixturevalue("live_server_process")


def test_customer_chats_in_the_widget_on_the_demo_page(demo_server):
    from playwright.sync_api import expect, sync_playwright

    # Database work first: Playwright's sync API runs an event loop in this thread.
    tenant = tenant_create(
        name="Northwind Bikes", slug="northwind", allowed_origins=[demo_server.url]
    )
    ingest_text(
        tenant=tenant,
        title="Returns and refunds",
        text=RETURNS,
        url="https://help.northwind-bikes.example/returns",
    )
    ingest_text(tenant=tenant, title="Delivery", text=SHIPPING)
    widget_key = WidgetKey.objects.for_tenant(tenant).get().key
    ARTIFACTS.mkdir(exist_ok=True)
    frames: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f)))
            page.goto(f"{demo_server.url}/demo/")
            expect(page.locator(f'script[data-widget-key="{widget_key}"]')).to_have_count(1)
            page.locator('[data-testid="launcher"]').click()
            expect(page.locator('[data-testid="panel"]')).to_be_visible()
            page.evaluate(WATCH_BUBBLES)
            page.screenshot(path=ARTIFACTS / "chat-1-open.png")

            page.locator('[data-testid="input"]').fill("How many days do I have to return a bike?")
            page.locator('[data-testid="send"]').click()
            customer = page.locator('[data-testid="message"][data-role="customer"]')
            expect(customer).to_have_attribute(
                "data-message-id", re.compile(r"^\d+$"), timeout=30_000
            )
            answer = page.locator('[data-testid="message"][data-role="assistant"]').last
            expect(answer).to_have_attribute("data-streaming", "true", timeout=300_000)
            page.screenshot(path=ARTIFACTS / "chat-2-streaming.png")
            expect(answer).to_have_attribute("data-state", "complete", timeout=300_000)

            citation = answer.locator('a[data-testid="citation"]').first
            expect(citation).to_be_visible()
            expect(citation).to_have_attribute(
                "href", "https://help.northwind-bikes.example/returns"
            )
            page.screenshot(path=ARTIFACTS / "chat-3-answered.png")

            answer.locator('[data-testid="thumbs-up"]').click()
            expect(answer.locator('[data-testid="thumbs-up"]')).to_have_attribute(
                "aria-pressed", "true"
            )
            page.locator('[data-testid="handoff"]').click()
            expect(
                page.locator('[data-testid="status"][data-state="waiting_for_human"]')
            ).to_be_visible(timeout=30_000)
            page.screenshot(path=ARTIFACTS / "chat-4-handoff.png")
            page.wait_for_function("() => window.__bubbles.length > 0", timeout=10_000)
            bubbles = page.evaluate("window.__bubbles")
            answer_id = answer.get_attribute("data-message-id")
        finally:
            browser.close()

    # The bubble grew while it streamed, token by token, before it was complete.
    streaming = [b["length"] for b in bubbles if b["id"] == answer_id and b["streaming"] == "true"]
    assert len(set(streaming)) >= 2 and streaming == sorted(streaming), bubbles
    token_frames = [f for f in frames if '"type":"token"' in f.replace(" ", "")]
    assert len(token_frames) >= 2
    assert any('"type":"feedback_ack"' in f.replace(" ", "") for f in frames)

    conversation = Conversation.objects.for_tenant(tenant).get()
    assert conversation.status == "waiting_for_human"
    assert conversation.handoff_reason == "customer_request"
    stored = Message.objects.for_tenant(tenant).get(seq=int(answer_id))
    assert stored.status == "complete" and stored.citations and stored.first_token_ms is not None
    feedback = Feedback.objects.for_tenant(tenant).get()
    assert (feedback.kind, feedback.rating, feedback.message_id) == ("thumbs", "up", stored.pk)


def test_grounded_answer_in_the_widget_cites_each_document_once(grounded_demo_server):
    """The default strategy with the real model: whatever it says passes the guard or is
    replaced by the extractive answer; either way the widget shows the fact, no markup, and
    one citation per document."""
    from playwright.sync_api import expect, sync_playwright

    tenant = tenant_create(
        name="Northwind Bikes", slug="northwind", allowed_origins=[grounded_demo_server.url]
    )
    ingest_text(
        tenant=tenant,
        title="Returns and refunds",
        text=RETURNS,
        url="https://help.northwind-bikes.example/returns",
    )
    ingest_text(
        tenant=tenant,
        title="Delivery",
        text=SHIPPING,
        url="https://help.northwind-bikes.example/delivery",
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{grounded_demo_server.url}/demo/")
            page.locator('[data-testid="launcher"]').click()
            page.locator('[data-testid="input"]').fill("How many days do I have to return a bike?")
            page.locator('[data-testid="send"]').click()
            answer = page.locator('[data-testid="message"][data-role="assistant"]').last
            expect(answer).to_have_attribute("data-state", "complete", timeout=300_000)
            text = answer.locator(".content").inner_text()
            hrefs = [
                link.get_attribute("href")
                for link in answer.locator('a[data-testid="citation"]').all()
            ]
            page.screenshot(path=ARTIFACTS / "chat-5-grounded.png")
        finally:
            browser.close()

    assert "30 days" in text and "<" not in text, text
    assert hrefs and len(hrefs) == len(set(hrefs)), hrefs  # each document once
    assert "https://help.northwind-bikes.example/returns" in hrefs
    stored = Message.objects.for_tenant(tenant).filter(role="assistant").latest("pk")
    assert stored.strategy == "grounded"
    assert stored.grounding["outcome"] in {"grounded", "fell_back"}, stored.grounding
    documents = [c["document_id"] for c in stored.citations]
    assert len(documents) == len(set(documents)) == len(hrefs)
