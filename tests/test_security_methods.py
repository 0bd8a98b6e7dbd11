"""Every API path answers every HTTP method without a server error (issue #11).

schemathesis (tests/test_api_schemathesis.py) fuzzes the operations the schema documents; this
sends each path of the schema every method a client can send, HEAD and OPTIONS included, with
valid credentials (an admin key, and an owner signed in), at seeded objects of the tenant and
with empty bodies. Nothing may answer 5xx, and every 4xx carries the API's error body.
"""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from tests.test_api_schemathesis import _seed

pytestmark = pytest.mark.usefixtures("fresh_cache", "webhooks_to_loopback")

METHODS = ["get", "head", "options", "post", "put", "patch", "delete"]


def _api_paths() -> list[str]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(p for p in schema["paths"] if p.startswith("/api/v1/"))


def _fill(path: str, ids: dict[str, str]) -> str:
    """The path with every {parameter} naming a seeded object (or a plausible unknown one)."""
    seeded = {}
    for prefix, object_id in ids.items():
        if path.startswith(prefix) and path != prefix:
            name = path[len(prefix) :].split("}", 1)[0].lstrip("{")
            seeded.setdefault(name, object_id)
    seeded.setdefault("contact_id", ids["/api/v1/contacts/"])
    seeded.setdefault("conversation_id", ids["/api/v1/conversations/"])
    return re.sub(
        r"\{([^}]+)\}",
        lambda m: seeded.get(m.group(1), "00000000-0000-0000-0000-000000000000"),
        path,
    )


@pytest.mark.parametrize("who", ["api_key", "session"])
def test_every_method_on_every_api_path_answers_without_a_server_error(tenant_a, settings, who):
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: excerpts, quickly
    key, ids = _seed(tenant_a)
    client = APIClient(raise_request_exception=False)  # a 500 is a finding, not a crash
    if who == "api_key":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        query = ""
    else:
        client.force_login(tenant_a.owner)
        query = "?tenant=acme"
    paths = _api_paths()
    assert len(paths) >= 25, paths
    failures, sent = [], 0
    # DELETE last, so the other methods still find the seeded objects.
    for method in METHODS:
        for path in paths:
            url = _fill(path, ids) + query
            response = getattr(client, method)(url, format="json")
            sent += 1
            if response.status_code >= 500:
                failures.append(f"{method.upper()} {url}: {response.status_code}")
                continue
            if response.status_code >= 400 and method != "head":
                body = response.json()
                if set(body) != {"error"} or not body["error"].get("message"):
                    failures.append(f"{method.upper()} {url}: error body {body}")
    assert sent == len(paths) * len(METHODS)
    assert failures == [], "\n".join(failures)
