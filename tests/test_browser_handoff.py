"""Automatic assignment end to end in three real Chromium contexts: two people at the console
and a customer in the widget.

The inbox assigns round robin; the agent granted it is online at the console, the admin (who
sees every inbox but holds no grant, so is never assigned automatically) watches the queue.
The customer asks for a person: the conversation goes to the online agent, whose console
says so; the admin's queue shows it with that agent; the customer sees the agent's name.
"""

from __future__ import annotations

import pytest

from apps.workspace import inbox_settings, selectors, services
from apps.workspace.models import AssignmentMode
from tests.support.browser import chromium_path, session_for
from tests.test_browser_workspace import ARTIFACTS, server, shop  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_handoff_is_assigned_to_the_online_agent_and_everyone_sees_who(
    server,  # noqa: F811
    shop,  # noqa: F811
    tenant_a,
):
    from playwright.sync_api import expect, sync_playwright

    tenant = tenant_a.tenant
    tenant.allowed_origins = [*tenant.allowed_origins, shop.url]
    tenant.save(update_fields=["allowed_origins"])
    agent_user = tenant_a.agent
    agent_user.display_name = "Dana"
    agent_user.save(update_fields=["display_name"])
    inbox = selectors.inbox_default(tenant=tenant)
    inbox_settings.inbox_update(inbox=inbox, assignment=AssignmentMode.ROUND_ROBIN)
    services.inbox_grant(inbox=inbox, agent=agent_user)
    ARTIFACTS.mkdir(exist_ok=True)
    # Database work before Playwright starts: its sync API runs an event loop in this thread.
    sessions = {"agent": session_for(agent_user), "admin": session_for(tenant_a.admin)}
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
            consoles = {}
            for who, session_id in sessions.items():
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                context.add_cookies([{"name": "sessionid", "value": session_id, "url": server.url}])
                page = context.new_page()
                page.goto(f"{server.url}/console/acme/")
                expect(page.locator('[data-testid="console-connection"]')).to_have_attribute(
                    "data-state", "online", timeout=15000
                )
                consoles[who] = page
            customer = browser.new_context(viewport={"width": 800, "height": 900}).new_page()

            customer.goto(f"{shop.url}/")
            customer.locator('textarea[data-testid="input"]').fill("My anvil arrived cracked.")
            customer.locator('button[data-testid="send"]').click()
            expect(
                customer.locator('[data-testid="message"][data-role="assistant"]')
            ).to_contain_text("Echo: My anvil arrived cracked.", timeout=15000)
            customer.locator('button[data-testid="handoff"]').click()

            # Assigned at once to the online agent: the customer reads their name.
            status = customer.locator('[data-testid="status"]')
            expect(status).to_have_attribute("data-state", "with_agent", timeout=15000)
            expect(status).to_contain_text("Dana joined the conversation")
            # The agent's console says it is theirs.
            notice = consoles["agent"].locator('[data-testid="notification"]')
            expect(notice).to_contain_text("Assigned to you", timeout=15000)
            mine = consoles["agent"].locator('[data-testid="queue-item"]')
            expect(mine).to_have_attribute("data-status", "with_agent", timeout=15000)
            # The admin's queue shows it taken, by whom.
            theirs = consoles["admin"].locator('[data-testid="queue-item"]')
            expect(theirs).to_have_count(1, timeout=15000)
            expect(theirs).to_have_attribute("data-status", "with_agent")
            expect(theirs).to_contain_text("with Dana")

            consoles["admin"].screenshot(path=str(ARTIFACTS / "handoff-admin-console.png"))
            customer.screenshot(path=str(ARTIFACTS / "handoff-customer-widget.png"))
        except BaseException:
            print(server.log()[-6000:])  # the server's side of a failure
            raise
        finally:
            browser.close()
