"""A company makes the widget its own in the admin, and the demo page shows it: no rebuild.

Real Chromium against a live uvicorn. An admin of the tenant changes the widget key's colours,
greeting and language on its admin page; a first-time visitor of /demo/ (a fresh browser
profile) gets the new launcher colour, the greeting and German strings. The admin then changes
them again, and a returning visitor sees the change as soon as they open the chat, which
reconnects in the new language. The widget bundle served stays byte for byte the same, and
within its size budget.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import httpx
import pytest

from apps.tenants.models import Role, WidgetKey
from apps.tenants.services import membership_set, tenant_create
from apps.tenants.tests.factories import UserFactory
from tests.support.browser import CHROMIUM_ARGS, chromium_path, session_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
WIDGET = ROOT / "frontend" / "dist" / "supportai-widget.js"
BUDGET_GZIP_BYTES = 50 * 1024


@pytest.fixture
def server(monkeypatch, request):
    """A live uvicorn whose assistant echoes: this flow needs no model."""
    if not WIDGET.is_file():
        pytest.fail(f"{WIDGET} is missing: build it (`cd frontend && npm ci && npm run build`)")
    monkeypatch.setenv("ASSISTANT_MODE", "echo")
    monkeypatch.setenv("DEMO_TENANT_SLUG", "northwind")
    monkeypatch.setenv("CHAT_RATE_CONNECTS_PER_CLIENT", "0")
    monkeypatch.setenv("CHAT_RATE_MESSAGES_PER_CLIENT", "0")
    return request.getfixturevalue("live_server_process")


def _served_widget(url: str) -> str:
    response = httpx.get(f"{url}/static/widget/supportai-widget.js", timeout=30)
    assert response.status_code == 200
    return hashlib.sha256(response.content).hexdigest()


def _edit_in_admin(page, url: str, key: WidgetKey, *, colour: str, greeting: str, languages):
    from playwright.sync_api import expect

    page.goto(f"{url}/admin/tenants/widgetkey/{key.pk}/change/")
    page.locator('input[name="accent_color"]').fill(colour)
    page.locator('textarea[name="greeting"]').fill(greeting)
    for box in page.locator('input[name="languages"]').all():
        box.set_checked(box.get_attribute("value") in languages)
    page.locator('[name="_save"]').first.click()
    expect(page).to_have_url(f"{url}/admin/tenants/widgetkey/")


def test_admin_changes_the_look_and_the_demo_page_shows_it(server):
    from playwright.sync_api import expect, sync_playwright

    tenant = tenant_create(name="Northwind Bikes", slug="northwind", allowed_origins=[server.url])
    owner = UserFactory(username="northwind-owner")
    membership_set(tenant=tenant, user=owner, role=Role.OWNER)
    key = WidgetKey.objects.for_tenant(tenant).get()
    session_id = session_for(owner)
    bundle_before = _served_widget(server.url)
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            admin_context = browser.new_context(locale="en-US")
            admin_context.add_cookies(
                [{"name": "sessionid", "value": session_id, "url": server.url}]
            )
            admin = admin_context.new_page()
            _edit_in_admin(
                admin,
                server.url,
                key,
                colour="#0a7d38",
                greeting="Hallo! Fragen Sie uns zu Lieferung und Rückgabe.",
                languages={"de"},
            )

            # A first-time visitor whose browser prefers English: this key speaks German only.
            visitor_context = browser.new_context(locale="en-US")
            visitor = visitor_context.new_page()
            visitor.goto(f"{server.url}/demo/")
            launcher = visitor.locator('[data-testid="launcher"]')
            expect(launcher).to_have_css("background-color", "rgb(10, 125, 56)", timeout=20_000)
            expect(launcher).to_have_attribute("aria-label", "Support-Chat öffnen")
            launcher.click()
            expect(visitor.locator('[data-testid="greeting"]')).to_have_text(
                "Hallo! Fragen Sie uns zu Lieferung und Rückgabe."
            )
            expect(visitor.locator('[data-testid="input"]')).to_have_attribute(
                "placeholder", "Nachricht eingeben…"
            )
            expect(visitor.locator("supportai-chat header")).to_have_css(
                "background-color", "rgb(10, 125, 56)"
            )
            visitor.screenshot(path=ARTIFACTS / "widget-settings-1-german-green.png")

            # The admin changes it again; the returning visitor's open chat picks it up.
            _edit_in_admin(
                admin,
                server.url,
                key,
                colour="#7c3aed",
                greeting="Bonjour ! Posez-nous vos questions.",
                languages={"fr"},
            )
            visitor.reload()
            visitor.locator('[data-testid="launcher"]').click()
            expect(visitor.locator('[data-testid="greeting"]')).to_have_text(
                "Bonjour ! Posez-nous vos questions.", timeout=20_000
            )
            expect(visitor.locator('[data-testid="input"]')).to_have_attribute(
                "placeholder", "Saisissez votre message…"
            )
            expect(visitor.locator("supportai-chat header")).to_have_css(
                "background-color", "rgb(124, 58, 237)"
            )
            # The widget reconnected in French (the server answers in the connection's
            # language) and is online again.
            expect(visitor.locator('[data-testid="connection"]')).to_have_attribute(
                "data-connection", "online", timeout=20_000
            )
            visitor.screenshot(path=ARTIFACTS / "widget-settings-2-french-violet.png")
        finally:
            browser.close()

    key.refresh_from_db()
    assert (key.accent_color, key.languages) == ("#7c3aed", ["fr"])
    # The same bundle all along: settings are data, not code.
    assert _served_widget(server.url) == bundle_before
    assert len(gzip.compress(WIDGET.read_bytes(), compresslevel=9)) <= BUDGET_GZIP_BYTES
