"""The admin sidebar links the agent console and the analytics dashboard for exactly the people
those pages let in, and both pages lead back to the admin."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

CONSOLE = reverse("workspace:console_home")
DASHBOARD = reverse("analytics:dashboard")
ADMIN = reverse("admin:index")


def sidebar_links(client, url: str = ADMIN) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('id="nav-sidebar-apps"')
    end = html.index("</nav>", start)
    return set(re.findall(r'href="([^"]+)"', html[start:end]))


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_see_console_and_dashboard_links(client, tenant_a, role):
    client.force_login(getattr(tenant_a, role))
    links = sidebar_links(client)
    assert {CONSOLE, DASHBOARD} <= links
    # The model admin is still listed below them.
    assert reverse("admin:conversations_conversation_changelist") in links


def test_agent_sees_the_console_link_but_not_the_dashboard(client, tenant_a):
    client.force_login(tenant_a.agent)
    links = sidebar_links(client)
    assert CONSOLE in links
    assert DASHBOARD not in links
    assert client.get(CONSOLE).status_code == 302  # to their tenant's console
    assert client.get(DASHBOARD).status_code == 403


def test_outsider_sees_neither_link(client, tenant_a, tenant_b):
    client.force_login(tenant_a.outsider)
    links = sidebar_links(client)
    assert CONSOLE not in links
    assert DASHBOARD not in links
    assert client.get(CONSOLE).status_code == 403
    assert client.get(DASHBOARD).status_code == 403


@pytest.mark.parametrize("role", ["owner", "admin", "agent", "outsider"])
def test_a_link_is_shown_exactly_when_its_page_lets_the_person_in(client, tenant_a, role):
    client.force_login(getattr(tenant_a, role))
    links = sidebar_links(client)
    for url in (CONSOLE, DASHBOARD):
        status = client.get(url).status_code
        assert (url in links) == (status in {200, 302}), (url, status)


def test_console_and_dashboard_link_back_to_the_admin(client, tenant_a):
    client.force_login(tenant_a.owner)
    console = sidebar_links(client, reverse("workspace:console", args=[tenant_a.tenant.slug]))
    dashboard = sidebar_links(client, DASHBOARD)
    model_admin = reverse("admin:conversations_conversation_changelist")
    for links in (console, dashboard):
        assert {CONSOLE, DASHBOARD, model_admin} <= links
    for url in (reverse("workspace:console", args=[tenant_a.tenant.slug]), DASHBOARD):
        assert f'href="{ADMIN}"' in client.get(url).content.decode()
