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


# --- Hole 5: the knowledge admin socket checks the Origin like the console's ------------------


def _session_cookie(user) -> bytes:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _knowledge_socket_connects(user, origin: bytes | None) -> bool:
    from asgiref.sync import sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from supportai.routing import websocket_urlpatterns

    headers = [(b"cookie", await sync_to_async(_session_cookie)(user))]
    if origin is not None:
        headers.append((b"origin", origin))
    socket = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), "/ws/admin/knowledge/?tenant=acme", headers=headers
    )
    connected, _ = await socket.connect(timeout=10)
    await socket.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
async def test_knowledge_admin_socket_refuses_foreign_and_missing_origins(tenant_a):
    assert await _knowledge_socket_connects(tenant_a.owner, b"http://127.0.0.1")
    assert not await _knowledge_socket_connects(tenant_a.owner, b"https://evil.example.com")
    assert not await _knowledge_socket_connects(tenant_a.owner, None)
