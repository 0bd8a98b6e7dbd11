"""The analytics dashboard in a real headless Chromium against a live server.

Chromium is Debian's (`/usr/bin/chromium`; `apt-get install chromium` if it is missing): the test
never downloads a browser. A screenshot is saved to test-artifacts/ for people to look at.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from apps.analytics.tests.factories import seed_dashboard
from apps.tenants.models import Role
from apps.tenants.services import membership_set

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _session_cookie(user, live_server) -> dict:
    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server.url,
    }


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright. Started once the test's rows are written:
    Playwright runs an event loop in this thread, and Django refuses database calls beside it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright (python) is not installed in the venv", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_dashboard_in_chromium_shows_only_the_viewers_tenant(
    transactional_db, live_server, tenant_a, tenant_b
):
    seed_dashboard(
        tenant_a,
        conversations=1111,
        topic="acme-anvil-recall",
        alert="Acme questions moved to anvil recalls",
        source="Acme old price list",
    )
    seed_dashboard(
        tenant_b,
        conversations=2222,
        topic="bluebird-gear-noise",
        alert="Bluebird questions moved to gear noise",
        source="Bluebird old manual",
    )
    # The owner of B is an admin of A too, to use the switcher; B's agent is only an agent.
    membership_set(tenant=tenant_a.tenant, user=tenant_b.owner, role=Role.ADMIN)
    owner_cookie = _session_cookie(tenant_b.owner, live_server)
    agent_cookie = _session_cookie(tenant_b.agent, live_server)
    outsider_cookie = _session_cookie(tenant_b.outsider, live_server)

    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1800})
        context.add_cookies([owner_cookie])
        page = context.new_page()
        response = page.goto(f"{live_server.url}/dashboard/?tenant=bluebird")
        assert response is not None and response.status == 200
        page.wait_for_selector("#sa-summary")

        assert page.inner_text('[data-metric="conversations"]') == "4444"
        # Conversations, rates, answer outcomes, latency, feedback, tokens.
        assert page.locator("svg.sa-chart").count() == 6
        assert "Answers: grounded, fell back to extractive, declined" in page.content()
        assert page.locator("svg.sa-chart rect").count() > 0  # bars drawn
        assert page.locator("svg.sa-chart polyline").count() > 0  # lines drawn
        body = page.inner_text("body")
        assert "bluebird-gear-noise" in body and "How do I bluebird-gear-noise?" in body
        assert "Bluebird questions moved to gear noise" in body
        assert "Bluebird old manual" in body
        for text in ("acme-anvil-recall", "anvil recalls", "Acme old price list", "1111"):
            assert text not in body, text
        # Unfold's admin chrome around it (the stylesheet loaded, the page is styled).
        assert page.evaluate("getComputedStyle(document.body).fontFamily") != ""
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "analytics-dashboard.png"), full_page=True)

        # The switcher moves to the other tenant the person administers.
        with page.expect_navigation():
            page.select_option("#sa-tenant", "acme")
        assert "tenant=acme" in page.url
        body = page.inner_text("body")
        assert "acme-anvil-recall" in body and "bluebird-gear-noise" not in body
        context.close()

        # An agent of B and someone of no tenant are refused.
        for cookie in (agent_cookie, outsider_cookie):
            context = browser.new_context()
            context.add_cookies([cookie])
            page = context.new_page()
            response = page.goto(f"{live_server.url}/dashboard/")
            assert response is not None and response.status == 403
            assert "bluebird-gear-noise" not in page.content()
            context.close()
