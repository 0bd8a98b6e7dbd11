"""Server-side requests stay off the server's own network (issue #11, hole 6).

- NAT64 (`64:ff9b::7f00:1`), IPv4-mapped and 6to4 forms of loopback are refused by the webhook
  and crawler checks;
- the address connected to is the address checked: a name that resolves to a public address
  for the check and to 127.0.0.1 right after (DNS rebinding) reaches nothing;
- `DEBUG` alone does not open webhooks to loopback, and when private targets are allowed on
  purpose a delivery does not store what the internal page answered.

The DNS answers are scripted (a replaced `socket.getaddrinfo`); the HTTP server is real and
listens on 127.0.0.1, and nothing here connects anywhere else.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from apps.core.errors import ApplicationError
from apps.core.netguard import address_is_public
from apps.events.models import Event
from apps.integrations import services
from apps.integrations.models import WebhookDelivery, WebhookSubscription
from apps.knowledge.crawl import Crawler, FetchError

LOOPBACK_FORMS = [
    "127.0.0.1",
    "::1",
    "::ffff:127.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 well-known prefix
    "64:ff9b:1::a00:1",  # NAT64 local-use prefix, 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "10.1.2.3",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",  # noqa: S104 - an address to classify, not one to bind
]


@pytest.mark.parametrize("address", LOOPBACK_FORMS)
def test_internal_addresses_in_every_form_are_not_public(address):
    assert not address_is_public(address)


def test_public_addresses_stay_public():
    assert address_is_public("93.184.216.34")
    assert address_is_public("2606:2800:220:1:248:1893:25c8:1946")
    assert address_is_public("64:ff9b::5db8:d822")  # NAT64 of 93.184.216.34


@pytest.mark.parametrize("address", ["[64:ff9b::7f00:1]", "[::ffff:127.0.0.1]", "[2002:7f00:1::1]"])
def test_webhook_check_refuses_loopback_written_as_ipv6(settings, address):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(ApplicationError):
        services.webhook_url_check(f"http://{address}:8000/hooks")


@pytest.mark.parametrize("address", ["[64:ff9b::7f00:1]", "[::ffff:127.0.0.1]"])
def test_crawler_refuses_loopback_written_as_ipv6(address):
    crawler = Crawler(user_agent="test", timeout=2, max_bytes=10_000, allow_private=False)
    try:
        with pytest.raises(FetchError) as refused:
            crawler.fetch(f"http://{address}:8000/page")
    finally:
        crawler.close()
    # Refused for what the address is, not a connection that happened to fail.
    assert type(refused.value) is FetchError, refused.value
    assert "private" in str(refused.value)


@pytest.fixture
def rebinding_dns(monkeypatch):
    """`rebind.example` answers a public address once, then 127.0.0.1 (TTL 0 rebinding)."""
    real = socket.getaddrinfo
    calls = {"n": 0}

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        calls["n"] += 1
        address = "93.184.216.34" if calls["n"] == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


@pytest.fixture
def internal_page() -> Iterator[Any]:
    """An "internal" page on 127.0.0.1; yields (port, list of the paths requested from it)."""
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            body = b"<html><body><h1>Internal admin</h1><p>db password: hunter2</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], requested
    finally:
        server.shutdown()
        server.server_close()


def test_crawler_connects_only_to_the_address_it_checked(rebinding_dns, internal_page):
    port, requested = internal_page
    crawler = Crawler(user_agent="test", timeout=2, max_bytes=10_000, allow_private=False)
    try:
        with pytest.raises(FetchError):
            crawler.fetch(f"http://rebind.example:{port}/internal")
    finally:
        crawler.close()
    assert rebinding_dns["n"] >= 2  # looked up for the check and again for the connection
    assert requested == []


def _delivery_to(tenant, url: str) -> WebhookDelivery:
    # Saved directly: the subscription was valid (public) when it was made.
    subscription = WebhookSubscription.objects.create(
        tenant=tenant, url=url, event_types=["*"], secret=services.webhook_secret_new()
    )
    event = Event.objects.create(tenant=tenant, type="conversation.created", payload={})
    return WebhookDelivery.objects.create(tenant=tenant, subscription=subscription, event=event)


def test_webhook_connects_only_to_the_address_it_checked(
    tenant_a, settings, rebinding_dns, http_receiver
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    port = http_receiver.server.server_address[1]
    delivery = _delivery_to(tenant_a.tenant, f"http://rebind.example:{port}/hooks")
    delivery = services.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert http_receiver.requests == []
    assert delivery.last_status_code is None and delivery.last_error


def test_webhook_response_from_a_private_address_is_not_kept(tenant_a, settings, http_receiver):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # an operator who opted in (tests, a lab)
    delivery = _delivery_to(tenant_a.tenant, http_receiver.url)
    http_receiver.respond_with(500)
    delivery = services.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert len(http_receiver.requests) == 1 and delivery.last_status_code == 500
    assert delivery.response_body_excerpt == ""
    assert all(a.response_body_excerpt == "" for a in delivery.log.all())


def test_debug_alone_does_not_allow_private_webhook_targets(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"WEBHOOK_ALLOW_PRIVATE_TARGETS", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(DEBUG="true", DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="supportai.settings")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
