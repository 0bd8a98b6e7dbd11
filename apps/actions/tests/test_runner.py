"""One action call against real HTTP servers on loopback: addresses, limits, redirects, secrets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from apps.actions import runner, services
from apps.actions.demo_orders import OrderService, action_definitions
from apps.actions.models import Action, ActionCall, CallStatus
from apps.core.errors import ApplicationError


class Scripted:
    """A loopback server answering every request with one scripted reply."""

    def __init__(self) -> None:
        self.status, self.body, self.headers = 200, b"{}", {"Content-Type": "application/json"}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(server.status)
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.http.shutdown()
    server.http.server_close()


def get(url: str, **kwargs: Any) -> runner.Outcome:
    options = {
        "method": "GET",
        "url_template": url,
        "params": {},
        "headers": {},
        "timeout": 3.0,
        "result_fields": ["status", "nested.value", "items"],
        "allow_private": True,
    }
    options.update(kwargs)
    return runner.call(**options)


def test_only_result_fields_reach_the_customer(scripted):
    scripted.body = json.dumps(
        {"status": "ok", "nested": {"value": 3}, "items": ["a"], "secret": "internal"}
    ).encode()
    outcome = get(scripted.url + "/x")
    assert outcome.ok and outcome.shown == {"status": "ok", "nested.value": 3, "items": ["a"]}


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "localhost", "[::1]", "10.0.0.8", "169.254.169.254"]
)
def test_private_addresses_are_refused_by_default(address):
    outcome = get(f"http://{address}:9/orders", allow_private=False, timeout=1.0)
    assert not outcome.ok and outcome.kind == "refused_address", outcome


def test_loopback_is_refused_without_connecting(scripted):
    outcome = get(scripted.url + "/x", allow_private=False)
    assert outcome.kind == "refused_address"


def test_a_response_over_the_limit_is_not_read(scripted, settings):
    settings.ACTIONS_MAX_RESPONSE_BYTES = 2048
    scripted.body = b'{"status": "' + b"x" * 10_000 + b'"}'
    outcome = get(scripted.url + "/x")
    assert outcome.kind == "too_large" and outcome.shown == {}


def test_redirects_are_not_followed(scripted):
    scripted.status, scripted.headers = 302, {"Location": "http://169.254.169.254/latest"}
    outcome = get(scripted.url + "/x")
    assert outcome.kind == "http_error" and outcome.http_status == 302


def test_an_answer_that_is_not_json_fails_plainly(scripted):
    scripted.body = b"<html>login</html>"
    assert get(scripted.url + "/x").kind == "bad_response"


def test_a_dead_port_is_a_connection_failure():
    outcome = get("http://127.0.0.1:9/x", timeout=1.0)
    assert outcome.kind in {"connection", "timeout"}


def test_url_placeholders_are_encoded_and_cannot_change_the_host():
    url, query, body = runner.build_request(
        method="GET",
        url_template="https://orders.example.com/orders/{id}",
        params={"id": "../../admin?x=1#", "email": "a@b.c"},
    )
    assert url == "https://orders.example.com/orders/..%2F..%2Fadmin%3Fx%3D1%23"
    assert query == {"email": "a@b.c"} and body is None


# --- Definitions and secrets -------------------------------------------------------------------


@pytest.mark.django_db
def test_header_values_are_stored_encrypted(tenant_a):
    [definition, _] = action_definitions("https://orders.example.com")
    definition["headers"] = {"Authorization": "Bearer top-secret-token-123"}
    action = services.action_create(tenant=tenant_a.tenant, **definition)
    stored = Action.objects.for_tenant(tenant_a.tenant).get(pk=action.pk)
    assert "top-secret-token-123" not in stored.headers_encrypted
    assert stored.header_names == ["Authorization"]
    assert services.action_headers(stored) == {"Authorization": "Bearer top-secret-token-123"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url_template": "ftp://orders.example.com/{order_number}"}, "http"),
        ({"url_template": "https://{order_number}.example.com/"}, "after the host"),
        ({"url_template": "https://orders.example.com/{nope}"}, "not one of the parameters"),
        ({"identity_bindings": {"email": "password"}}, "bind to sub"),
        ({"parameters": {"type": "array"}}, "type"),
        ({"parameters": {"type": "object", "properties": {"a": {"pattern": "("}}}}, "regex"),
        ({"headers": {"Host": "evil"}}, "sets Host itself"),
        ({"headers": {"X-A": "one\r\nX-B: two"}}, "one line"),
    ],
)
def test_bad_definitions_are_refused(tenant_a, change, message):
    [definition, _] = action_definitions("https://orders.example.com")
    definition.update(change)
    with pytest.raises(ApplicationError) as exc:
        services.action_create(tenant=tenant_a.tenant, **definition)
    assert message in exc.value.message or message in json.dumps(exc.value.extra)


@pytest.mark.django_db
def test_sensitive_parameters_are_masked_in_the_audit(tenant_a, settings):
    settings.ACTIONS_ALLOW_PRIVATE_TARGETS = True
    service = OrderService().start()
    try:
        [definition, _] = action_definitions(service.url)
        definition["parameters"]["properties"]["pin"] = {"type": "string", "writeOnly": True}
        action = services.action_create(tenant=tenant_a.tenant, **definition)
        call, outcome = services.call_execute(
            action=action,
            params={"order_number": "NW-482913", "email": "alice@example.com", "pin": "4321"},
        )
    finally:
        service.stop()
    assert outcome.ok
    stored = ActionCall.objects.for_tenant(tenant_a.tenant).get(pk=call.pk)
    assert stored.params["pin"] == services.MASK and stored.status == CallStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_eager", "webhooks_to_loopback")
def test_action_executed_reaches_a_subscribed_webhook(tenant_a, settings, http_receiver):
    from apps.integrations.services import webhook_subscription_create

    settings.ACTIONS_ALLOW_PRIVATE_TARGETS = True
    webhook_subscription_create(
        tenant=tenant_a.tenant, url=http_receiver.url, event_types=["action.executed"]
    )
    service = OrderService().start()
    try:
        [definition, _] = action_definitions(service.url)
        action = services.action_create(tenant=tenant_a.tenant, **definition)
        call, _ = services.call_execute(
            action=action, params={"order_number": "NW-482913", "email": "alice@example.com"}
        )
    finally:
        service.stop()
    (request,) = http_receiver.wait_for(1)
    assert request.headers["X-SupportAI-Event"] == "action.executed"
    data = request.json()["data"]
    assert data["call_id"] == str(call.public_id) and data["status"] == "succeeded"
    assert data["action"] == "order_status" and data["http_status"] == 200
    # No header value (the order system's token) in what the webhook receives.
    assert "demo-orders-token" not in request.body.decode()
