"""Edges found by the security review (issue #11): methods nobody routes, origins, bodies.

Each test here failed on the code before its fix.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.support.api import assert_error

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


# --- Hole 7: admin sign-in is throttled ----------------------------------------------------------


def _sign_in(client, username: str, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_ten_wrong_passwords_then_the_right_one_is_still_refused(tenant_a):
    from django.test import Client

    user = tenant_a.admin
    user.set_password("the-right-password-7")
    user.save()
    client = Client()
    for _ in range(10):
        assert _sign_in(client, user.username, "guess").status_code == 200
    response = _sign_in(client, user.username, "the-right-password-7")
    assert response.status_code == 200, "signed in despite ten failures"
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_throttling_one_account_leaves_the_others_alone(tenant_a):
    from django.test import Client

    owner = tenant_a.owner
    owner.set_password("owner-password-9")
    owner.save()
    client = Client()
    for _ in range(6):
        _sign_in(client, tenant_a.admin.username, "guess")
    response = _sign_in(client, owner.username, "owner-password-9")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(owner.pk)


# --- Hole 7: a cap on API request bodies -----------------------------------------------------


def test_oversized_api_json_body_is_413_before_it_is_parsed(tenant_a, api_key_for, settings):
    settings.API_MAX_BODY_BYTES = 64 * 1024
    client = api_key_for(tenant_a.tenant, scopes=["contacts:write"])
    big = {"external_id": "big", "attributes": {"blob": "x" * (settings.API_MAX_BODY_BYTES + 1)}}
    response = client.post(f"{API}/contacts/", big, format="json")
    body = assert_error(response, 413, "too_large")
    assert "larger than" in body["error"]["message"]
    small = client.post(f"{API}/contacts/", {"external_id": "small"}, format="json")
    assert small.status_code == 201, small.content


def test_knowledge_text_sources_keep_the_upload_limit(tenant_a, api_key_for, settings):
    settings.API_MAX_BODY_BYTES = 64 * 1024
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write"])
    text = "# Returns\n\n" + "You can return any bike within 30 days. " * 3000  # ~120 kB
    body = {"kind": "text", "name": "Returns", "text": text}
    response = client.post(f"{API}/knowledge/sources/", body, format="json")
    assert response.status_code == 201, response.content[:300]


# --- Hole 7: the client address behind trusted proxies -----------------------------------------


PROXIES = ["10.0.0.0/8", "127.0.0.1"]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # A customer behind the load balancer: the address the proxy saw.
        ("10.0.0.5", ["198.51.100.7"], "198.51.100.7"),
        # Two proxies; whatever the customer claimed on the left is ignored.
        ("10.0.0.5", ["6.6.6.6, 198.51.100.7, 10.0.0.9"], "198.51.100.7"),
        # Header split over two lines.
        ("10.0.0.5", ["6.6.6.6", "198.51.100.7"], "198.51.100.7"),
        # A client that is not a proxy cannot choose its address by sending the header.
        ("203.0.113.9", ["198.51.100.7"], "203.0.113.9"),
        # Garbage from the proxy's side: fall back to the last good hop.
        ("10.0.0.5", ["not-an-ip"], "10.0.0.5"),
        ("10.0.0.5", [], "10.0.0.5"),
        ("10.0.0.5", ["[2001:db8::1]:443"], "2001:db8::1"),
    ],
)
def test_client_address_behind_trusted_proxies(peer, forwarded, client):
    from supportai.edge import client_address, parse_networks

    assert client_address(peer, forwarded, parse_networks(PROXIES)) == client


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_asgi_application_sees_the_real_client(kind, settings):
    from supportai.edge import TrustedProxyMiddleware

    seen = {}

    async def app(scope, receive, send):
        seen["client"] = scope["client"]

    wrapped = TrustedProxyMiddleware(app, trusted=PROXIES)
    scope = {
        "type": kind,
        "client": ("10.0.0.5", 5000),
        "headers": [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.7")],
    }
    await wrapped(scope, None, None)
    assert seen["client"][0] == "198.51.100.7"
    # And the deployed application is wrapped by it.
    from supportai.asgi import application

    assert isinstance(application, TrustedProxyMiddleware)


# --- Hole 7: syncing a source takes a POST (a link on another site cannot trigger it) ----------


@pytest.mark.django_db
def test_sync_now_get_only_asks_and_post_with_csrf_queues(
    tenant_a, django_capture_on_commit_callbacks
):
    from unittest import mock

    from django.test import Client
    from django.urls import reverse

    from apps.knowledge.models import Source
    from apps.knowledge.services import source_create

    source = source_create(
        tenant=tenant_a.tenant, kind=Source.Kind.TEXT, name="Returns", text="x", sync=False
    )
    url = reverse("admin:knowledge_source_sync_now_detail", args=[source.pk])
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_a.admin)
    with (
        mock.patch("apps.knowledge.tasks.sync_source.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        page = client.get(url)
        assert page.status_code == 200
        assert 'method="post"' in page.content.decode()
        source.refresh_from_db()
        assert source.status == Source.Status.IDLE and not delay.called
        # A cross-site form post carries no CSRF token.
        assert client.post(url).status_code == 403
        assert not delay.called
        token = client.cookies["csrftoken"].value
        response = client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    delay.assert_called_once_with(tenant_a.tenant.pk, source.pk)


# --- Hole 7: an owner cannot pull another tenant's person into their tenant --------------------


@pytest.mark.django_db
def test_owner_cannot_add_another_tenants_user_by_email(tenant_a, tenant_b):
    from django.test import Client

    from apps.tenants.models import Membership

    client = Client()
    client.force_login(tenant_a.owner)
    victim = tenant_b.owner
    response = client.post(
        "/admin/tenants/membership/add/",
        {"tenant": tenant_a.tenant.pk, "email": victim.email, "role": "agent"},
    )
    assert response.status_code == 200, response.status_code  # the form, with the reason
    assert "already has an account" in response.content.decode()
    assert not Membership.objects.for_tenant(tenant_a.tenant).filter(user=victim).exists()


@pytest.mark.django_db
def test_new_people_and_role_changes_by_email_still_work(tenant_a):
    from apps.tenants.models import Membership, Role
    from apps.tenants.services import membership_invite

    added = membership_invite(
        tenant=tenant_a.tenant, email="new.person@example.com", role=Role.AGENT, by=tenant_a.owner
    )
    assert added.user.email == "new.person@example.com"
    again = membership_invite(
        tenant=tenant_a.tenant, email="new.person@example.com", role=Role.ADMIN, by=tenant_a.owner
    )
    assert again.pk == added.pk
    assert Membership.objects.for_tenant(tenant_a.tenant).get(pk=added.pk).role == Role.ADMIN


# --- Hole 7: hostile documents cannot hold a worker ----------------------------------------------


def _zip_bomb_docx(uncompressed: int) -> bytes:
    """A valid DOCX whose document part is `uncompressed` bytes of highly compressible XML."""
    import io
    import zipfile

    from apps.knowledge.tests.docgen import make_docx

    original = zipfile.ZipFile(io.BytesIO(make_docx([("p", "Hello")])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "word/document.xml":
                filler = b"<!--" + b"A" * uncompressed + b"-->"
                data = data.replace(b"<w:body>", b"<w:body>" + filler, 1)
            bomb.writestr(info.filename, data)
    return out.getvalue()


def test_docx_that_expands_a_thousandfold_is_refused_before_parsing():
    import time

    from apps.knowledge.parsing import ParseError, parse_document

    data = _zip_bomb_docx(60 * 1024 * 1024)
    assert len(data) < 1024 * 1024  # under a megabyte on the wire
    started = time.monotonic()
    with pytest.raises(ParseError, match="expands"):
        parse_document(data=data, filename="bomb.docx")
    assert time.monotonic() - started < 2.0


def test_pdf_parsing_stops_at_the_time_limit():
    import time

    from apps.knowledge.parsing import ParseError, ParseLimits, parse_document
    from apps.knowledge.tests.docgen import make_pdf

    # One page with a content stream long enough to keep the text extractor busy for seconds.
    data = make_pdf(["\n".join(f"line {i} of a very long page" for i in range(60_000))])
    limits = ParseLimits(max_bytes=len(data) + 1, max_chars=50_000_000, max_parse_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(ParseError, match="too long"):
        parse_document(data=data, filename="slow.pdf", limits=limits)
    assert time.monotonic() - started < 2.5
