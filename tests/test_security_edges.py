"""Edges found by the security review (issue #11): methods nobody routes, origins, bodies.

Each test here failed on the code before its fix.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.test_api_integrations import assert_error

pytestmark = pytest.mark.usefixtures("fresh_cache")

API = "/api/v1"


# --- Hole 4: every method on a plain API view answers without a server error -----------------


@pytest.mark.parametrize("method", ["head", "options", "post", "put", "patch", "delete"])
@pytest.mark.parametrize("who", ["api_key", "session"])
def test_analytics_summary_answers_every_method_without_a_500(tenant_a, api_key_for, method, who):
    if who == "api_key":
        client, query = api_key_for(tenant_a.tenant, scopes=["analytics:read"]), ""
    else:
        client, query = APIClient(), "?tenant=acme"
        client.force_login(tenant_a.owner)
    response = getattr(client, method)(f"{API}/analytics/summary/{query}")
    if method == "head":
        assert response.status_code == 200
    elif method == "options":
        assert response.status_code == 200
        assert response.json()["name"]
    else:
        assert_error(response, 405, "method_not_allowed")


def test_head_on_analytics_summary_still_needs_the_scope(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    assert client.head(f"{API}/analytics/summary/").status_code == 403
