"""End to end in two real Chromium contexts: a customer in the widget, an agent in the console.

The customer asks for a person; the agent sees the conversation appear in the console without
reloading, takes it over and replies; the customer sees the reply. Screenshots of both sides go
to test-artifacts/.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from apps.workspace import selectors, services
from tests.support.browser import chromium_path, session_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
WIDGET = ROOT / "frontend" / "dist" / "supportai-widget.js"


@pytest.fixture
def server(monkeypatch, request):
    """A live uvicorn whose assistant echoes (no model needed for this flow)."""
    if not WIDGET.is_file():
        pytest.fail(
            f"{WIDGET} is missing: build the widget (`cd frontend && npm ci && npm run build`)"
        )
    monkeypatch.setenv("ASSISTANT_MODE", "echo")
    monkeypatch.setenv("CHAT_RATE_CONNECTS_PER_CLIENT", "0")
    monkeypatch.setenv("CHAT_RATE_MESSAGES_PER_CLIENT", "0")
    return request.getfixturevalue("live_server_process")


@pytest.fixture
def shop():
    """The company's own website on another loopback origin; its page embeds the widget."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get("index", b"")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.pages = pages
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_customer_asks_for_a_person_and_the_agent_answers_live(server, shop, tenant_a):
    from playwright.sync_api import expect, sync_playwright

    tenant = tenant_a.tenant
    tenant.allowed_origins = [*tenant.allowed_origins, shop.url]
    tenant.save(update_fields=["allowed_origins"])
    services.inbox_grant(inbox=selectors.inbox_default(tenant=tenant), agent=tenant_a.agent)
    ARTIFACTS.mkdir(exist_ok=True)
    # Database work before Playwright starts: its sync API runs an event loop in this thread.
    session_id = session_for(tenant_a.agent)
    shop.pages["index"] = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Acme shop</title></head>"
        "<body><h1>Acme Anvils shop</h1>"
        f"<script src='{server.url}/static/widget/supportai-widget.js' "
        f"data-widget-key='{tenant_a.widget_key.key}' data-open='true' data-language='en'>"
        "</script></body></html>"
    ).encode()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            agent_context = browser.new_context(viewport={"width": 1400, "height": 900})
            customer_context = browser.new_context(viewport={"width": 800, "height": 900})
            agent, customer = agent_context.new_page(), customer_context.new_page()

            # The agent is signed in (a session made here: the server checks it like any
            # other) and opens the console first: nothing is waiting yet.
            agent_context.add_cookies(
                [{"name": "sessionid", "value": session_id, "url": server.url}]
            )
            agent.goto(f"{server.url}/console/")
            agent.wait_for_url("**/console/acme/")
            expect(agent.locator('[data-testid="console-connection"]')).to_have_attribute(
                "data-state", "online", timeout=15000
            )
            expect(agent.locator('[data-testid="queue-item"]')).to_have_count(0)

            # The customer, on the shop's own website (an allowed origin), asks.
            customer.goto(f"{shop.url}/")
            customer.locator('textarea[data-testid="input"]').fill("My anvil arrived cracked.")
            customer.locator('button[data-testid="send"]').click()
            expect(
                customer.locator('[data-testid="message"][data-role="assistant"]')
            ).to_contain_text("Echo: My anvil arrived cracked.", timeout=15000)
            customer.locator('button[data-testid="handoff"]').click()
            expect(customer.locator('[data-testid="status"]')).to_have_attribute(
                "data-state", "waiting_for_human", timeout=15000
            )

            # The conversation appears in the console live, with a notification.
            item = agent.locator('[data-testid="queue-item"]')
            expect(item).to_have_count(1, timeout=15000)
            expect(item).to_contain_text("My anvil arrived cracked.")
            expect(agent.locator('[data-testid="notification"]')).to_be_visible()
            expect(agent.locator('[data-testid="notification"]')).to_contain_text("waiting")

            item.click()
            expect(agent.locator('[data-testid="transcript"]')).to_contain_text(
                "My anvil arrived cracked."
            )
            agent.locator('[data-testid="take-over"]').click()
            expect(agent.locator('[data-testid="conversation"]')).to_have_attribute(
                "data-status", "with_agent", timeout=15000
            )
            expect(customer.locator('[data-testid="status"]')).to_have_attribute(
                "data-state", "with_agent", timeout=15000
            )

            agent.locator('[data-testid="reply"]').fill(
                "Sorry about that! A new anvil ships today."
            )
            agent.locator('[data-testid="send"]').click()
            agent_bubble = customer.locator('[data-testid="message"][data-role="agent"]')
            expect(agent_bubble).to_contain_text("A new anvil ships today.", timeout=15000)
            expect(agent.locator('[data-testid="transcript"]')).to_contain_text(
                "A new anvil ships today."
            )

            agent.screenshot(path=str(ARTIFACTS / "workspace-agent-console.png"), full_page=True)
            customer.screenshot(path=str(ARTIFACTS / "workspace-customer-widget.png"))
        except BaseException:
            print(server.log()[-6000:])  # the server's side of a failure
            raise
        finally:
            browser.close()
