"""The analytics API: the summary sums the tenant's daily roll-ups.
Isolation, scopes and dead keys for every endpoint: tests/test_api_isolation.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.analytics.services import rollup_compute
from tests.support.api import API, assert_error, resource_objects
from tests.support.knowledge import knowledge_store  # noqa: F401

pytestmark = pytest.mark.usefixtures("fresh_cache", "knowledge_store")


def test_analytics_summary_sums_the_daily_rollups(tenant_a, tenant_b, resources_a, api_key_for):
    today = timezone.localdate()
    rollup_compute(tenant=tenant_a.tenant, day=today)
    resource_objects(tenant_b, "bluebird")
    rollup_compute(tenant=tenant_b.tenant, day=today)
    client = api_key_for(tenant_a.tenant, scopes=["analytics:read"])
    response = client.get(f"{API}/analytics/summary/?from={today}&to={today}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["days_with_data"] == 1
    totals = body["totals"]
    assert totals["conversations_started"] == 1  # tenant B's are not counted
    assert totals["messages_customer"] == 1 and totals["csat_count"] == 1
    assert totals["csat_average"] == 4.0
    assert body["daily"][0]["day"] == str(today)
    earlier = today - dt.timedelta(days=10)
    response = client.get(f"{API}/analytics/summary/?to={earlier}")
    assert response.json()["days_with_data"] == 0
    assert_error(client.get(f"{API}/analytics/summary/?from={today}&to={earlier}"), 400)
    assert_error(client.get(f"{API}/analytics/summary/?from=2020-01-01&to={today}"), 400)
    assert_error(client.get(f"{API}/analytics/summary/?from=soon"), 400, "invalid")
