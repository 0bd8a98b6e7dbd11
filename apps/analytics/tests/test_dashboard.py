"""The analytics dashboard shows each viewer only their own tenant's numbers, topics and alerts."""

from __future__ import annotations

import pytest

from apps.analytics.tests.factories import seed_dashboard
from apps.tenants.models import Role
from apps.tenants.services import membership_set


@pytest.fixture
def two_dashboards(tenant_a, tenant_b):
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
    return tenant_a, tenant_b


ACME_STRINGS = ("1111", "acme-anvil-recall", "anvil recalls", "Acme old price list", "Acme Anvils")


@pytest.mark.django_db
def test_owner_sees_own_numbers_clusters_alerts_and_stale_sources(client, two_dashboards):
    _, b = two_dashboards
    client.force_login(b.owner)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-tenant="bluebird"' in html
    assert '<dd data-metric="conversations">4444</dd>' in html  # 2 days x 2222
    assert "bluebird-gear-noise" in html and "How do I bluebird-gear-noise?" in html
    assert "Bluebird questions moved to gear noise" in html
    assert "Bluebird old manual" in html
    assert html.count("<svg") >= 5
    # Weighted over the two days: (2 + 3) AI-resolved of 8 resolved.
    assert '<dd data-metric="ai_resolution_rate">62.5%</dd>' in html
    for text in ACME_STRINGS:
        assert text not in html, text


@pytest.mark.django_db
def test_owner_of_b_cannot_open_tenant_a(client, two_dashboards):
    _, b = two_dashboards
    client.force_login(b.owner)
    response = client.get("/dashboard/?tenant=acme")
    assert response.status_code == 404
    for text in ACME_STRINGS:
        assert text not in response.content.decode()


@pytest.mark.django_db
def test_admin_of_a_sees_a(client, two_dashboards):
    a, _ = two_dashboards
    client.force_login(a.admin)
    html = client.get("/dashboard/").content.decode()
    assert "acme-anvil-recall" in html and "bluebird-gear-noise" not in html


@pytest.mark.django_db
def test_agents_get_403(client, two_dashboards):
    a, b = two_dashboards
    for agent in (a.agent, b.agent):
        client.force_login(agent)
        assert client.get("/dashboard/").status_code == 403
        assert client.get("/dashboard/?tenant=acme").status_code == 403


@pytest.mark.django_db
def test_outsiders_get_403_and_anonymous_people_are_sent_to_log_in(client, two_dashboards):
    a, _ = two_dashboards
    client.force_login(a.outsider)
    assert client.get("/dashboard/").status_code == 403
    client.logout()
    response = client.get("/dashboard/?tenant=acme")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_person_in_two_tenants_switches_between_them(client, two_dashboards):
    a, b = two_dashboards
    membership_set(tenant=b.tenant, user=a.owner, role=Role.ADMIN)
    client.force_login(a.owner)
    html = client.get("/dashboard/?tenant=bluebird").content.decode()
    assert '<option value="acme">' in html and '<option value="bluebird" selected>' in html
    assert "bluebird-gear-noise" in html and "acme-anvil-recall" not in html
    html = client.get("/dashboard/?tenant=acme&days=7").content.decode()
    assert "acme-anvil-recall" in html and "bluebird-gear-noise" not in html


@pytest.mark.django_db
def test_agent_in_one_tenant_and_admin_in_another_sees_only_the_second(client, two_dashboards):
    a, b = two_dashboards
    membership_set(tenant=b.tenant, user=a.agent, role=Role.ADMIN)
    client.force_login(a.agent)
    assert client.get("/dashboard/?tenant=acme").status_code == 404
    html = client.get("/dashboard/").content.decode()
    assert "bluebird-gear-noise" in html and '<option value="acme">' not in html


@pytest.mark.django_db
def test_request_id_is_echoed_or_created(client, two_dashboards):
    a, _ = two_dashboards
    client.force_login(a.owner)
    response = client.get("/dashboard/", HTTP_X_REQUEST_ID="req-123.abc")
    assert response["X-Request-ID"] == "req-123.abc"
    response = client.get("/dashboard/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32
