"""Actions in the demo widget, in Debian's real headless Chromium against a live server.

uvicorn serves the demo page (signed in as the demo customer Alice), the websocket and the demo
order system (/demo/orders/, which the demo tenant's actions call over HTTP like any company
system). The customer asks where an order is and sees the live answer with its source; asks to
cancel another order, confirms in the widget, and sees the result. Screenshots go to
test-artifacts/ (gitignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.actions import services
from apps.actions.demo_orders import action_definitions
from apps.actions.models import ActionCall, CallStatus
from apps.tenants.services import tenant_create

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
WIDGET = ROOT / "frontend" / "dist" / "supportai-widget.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def actions_server(monkeypatch, request):
    if not WIDGET.is_file():
        pytest.fail(f"{WIDGET} is missing: run `cd frontend && npm ci && npm run build`")
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`")
    for name, value in {
        "ASSISTANT_MODE": "extractive",
        "ACTIONS_LLM_FILL": "off",
        "ACTIONS_DEMO_ORDERS": "true",
        "DEMO_TENANT_SLUG": "northwind",
        "CHAT_RATE_CONNECTS_PER_CLIENT": "0",
        "CHAT_RATE_MESSAGES_PER_CLIENT": "0",
        "CHAT_BURST_DEBOUNCE_MS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    return request.getfixturevalue("live_server_process")


def test_customer_checks_an_order_and_cancels_another_in_the_widget(actions_server):
    from playwright.sync_api import expect, sync_playwright

    # Database work first: Playwright's sync API runs an event loop in this thread.
    tenant = tenant_create(
        name="Northwind Bikes", slug="northwind", allowed_origins=[actions_server.url]
    )
    # The demo order system is this same server, on loopback.
    tenant.settings = {"actions_allow_private": True}
    tenant.save(update_fields=["settings"])
    for definition in action_definitions(f"{actions_server.url}/demo/orders"):
        services.action_create(tenant=tenant, **definition)
    ARTIFACTS.mkdir(exist_ok=True)
    sent: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(f)))
            page.goto(f"{actions_server.url}/demo/?customer=cust_alice")
            page.locator('[data-testid="launcher"]').click()
            expect(page.locator('[data-testid="panel"]')).to_be_visible()

            page.locator('[data-testid="input"]').fill("Where is my order NW-482913?")
            page.locator('[data-testid="send"]').click()
            answer = page.locator('[data-testid="message"][data-role="assistant"]').last
            expect(answer).to_have_attribute("data-state", "complete", timeout=120_000)
            expect(answer.locator(".content")).to_contain_text("shipped")
            expect(answer.locator(".content")).to_contain_text("DHL")
            source = answer.locator('[data-testid="citation-text"]')
            expect(source).to_have_text("[1] Order status: order number NW-482913, live")
            page.screenshot(path=ARTIFACTS / "actions-1-status.png")

            page.locator('[data-testid="input"]').fill("Please cancel my order NW-517204")
            page.locator('[data-testid="send"]').click()
            confirm = page.locator('[data-testid="action-confirm"]')
            expect(confirm).to_be_visible(timeout=120_000)
            page.screenshot(path=ARTIFACTS / "actions-2-confirm.png")
            confirm.click()
            result = page.locator('[data-testid="message"][data-role="assistant"]').nth(2)
            expect(result).to_have_attribute("data-state", "complete", timeout=60_000)
            expect(result.locator(".content")).to_contain_text("is cancelled")
            expect(result.locator('[data-testid="citation-text"]')).to_have_text(
                "[1] Cancel order: order number NW-517204, live"
            )
            expect(page.locator('[data-testid="action"]')).to_have_attribute(
                "data-state", "succeeded"
            )
            expect(confirm).to_have_count(0)
            page.screenshot(path=ARTIFACTS / "actions-3-cancelled.png")
        finally:
            browser.close()

    calls = list(ActionCall.objects.for_tenant(tenant).order_by("id"))
    assert [(c.action_name, c.status) for c in calls] == [
        ("order_status", CallStatus.SUCCEEDED),
        ("cancel_order", CallStatus.SUCCEEDED),
    ]
    assert calls[1].confirmed_by == "customer cust_alice"
    assert sum('"type":"confirm"' in f.replace(" ", "") for f in sent) == 1
