"""A small order system for the demo and the tests: the kind of API a company's actions call.

    GET  /orders/<number>?email=<customer email>   → the order, or 404 (not theirs, or none)
    POST /orders/<number>/cancel  {"email": …}     → cancelled, or why not; 404 as above

Every request needs `Authorization: Bearer <token>` when the book has a token (the action
stores it as an encrypted header). The demo serves it under /demo/orders/ (apps/actions/views.py);
tests start `OrderService` on loopback, with knobs for a slow or failing system.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEMO_TOKEN = "demo-orders-token"  # noqa: S105 (the demo system's, not a secret)

SAMPLE_ORDERS: dict[str, dict[str, Any]] = {
    "NW-482913": {
        "email": "alice@example.com",
        "status": "shipped",
        "carrier": "DHL",
        "tracking_number": "JD014600006281",
        "estimated_delivery": "2026-12-04",
        "items": ["Trail 29 mountain bike"],
    },
    "NW-517204": {
        "email": "alice@example.com",
        "status": "processing",
        "carrier": "",
        "tracking_number": "",
        "estimated_delivery": "2026-12-09",
        "items": ["City helmet, size M", "LED light set"],
    },
    "NW-300118": {
        "email": "bob@example.com",
        "status": "delivered",
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "estimated_delivery": "2026-11-20",
        "items": ["Road 700 racing bike"],
    },
}
# Who the demo page signs in as (an end-user token for this `sub`, with this email).
DEMO_CUSTOMERS = {
    "cust_alice": {"email": "alice@example.com", "name": "Alice Example"},
    "cust_bob": {"email": "bob@example.com", "name": "Bob Example"},
}
CANCELLABLE = frozenset({"processing"})


class OrderBook:
    """The orders and the two operations; thread-safe."""

    def __init__(self, orders: dict[str, dict[str, Any]] | None = None, token: str = "") -> None:
        self.orders = copy.deepcopy(orders if orders is not None else SAMPLE_ORDERS)
        self.token = token
        self.lock = threading.Lock()
        self.cancellations: list[str] = []

    def authorized(self, header: str | None) -> bool:
        return not self.token or header == f"Bearer {self.token}"

    def public(self, number: str) -> dict[str, Any]:
        order = self.orders[number]
        return {"order_number": number, **{k: v for k, v in order.items() if k != "email"}}

    def lookup(self, number: str, email: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            order = self.orders.get(number.upper())
            if order is None or order["email"].lower() != (email or "").lower():
                return 404, {"error": "no such order for this customer"}
            return 200, self.public(number.upper())

    def cancel(self, number: str, email: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            number = number.upper()
            order = self.orders.get(number)
            if order is None or order["email"].lower() != (email or "").lower():
                return 404, {"error": "no such order for this customer"}
            if order["status"] == "cancelled":
                message = f"Order {number} was already cancelled."
                return 200, {**self.public(number), "cancelled": False, "message": message}
            if order["status"] not in CANCELLABLE:
                return 200, {
                    **self.public(number),
                    "cancelled": False,
                    "message": f"Order {number} has been {order['status']} and can no longer be "
                    "cancelled; you can return it within 30 days of delivery.",
                }
            order["status"] = "cancelled"
            self.cancellations.append(number)
            return 200, {
                **self.public(number),
                "cancelled": True,
                "message": f"Order {number} is cancelled; the refund reaches your card within "
                "5 business days.",
            }

    def handle(
        self, method: str, path: str, query: dict[str, str], body: bytes, authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON) for one request; `path` is relative to the service's root."""
        if not self.authorized(authorization):
            return 401, {"error": "missing or wrong token"}
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "orders" and method == "GET":
            return self.lookup(parts[1], query.get("email", ""))
        if len(parts) == 3 and parts[0] == "orders" and parts[2] == "cancel" and method == "POST":
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return 400, {"error": "the body must be JSON"}
            email = data.get("email", "") if isinstance(data, dict) else ""
            return self.cancel(parts[1], str(email))
        return 404, {"error": "no such endpoint"}


class OrderService:
    """The order book over HTTP on loopback, for tests: `delay` seconds before each answer,
    `fail_with` an HTTP status to answer everything with, `requests` what arrived."""

    def __init__(self, book: OrderBook | None = None) -> None:
        self.book = book or OrderBook(token=DEMO_TOKEN)
        self.delay = 0.0
        self.fail_with: int | None = None
        self.body_override: bytes | None = None
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                service.requests.append((method, self.path, dict(self.headers.items())))
                if service.delay:
                    time.sleep(service.delay)
                if service.fail_with:
                    status, payload = service.fail_with, {"error": "the order system is down"}
                else:
                    status, payload = service.book.handle(
                        method, parts.path, query, body, self.headers.get("Authorization")
                    )
                raw = service.body_override or json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up (a timeout test)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OrderService:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def action_definitions(base_url: str, token: str = DEMO_TOKEN) -> list[dict[str, Any]]:
    """The demo tenant's two actions against an order service at `base_url`."""
    order_number = {
        "type": "string",
        "title": "order number",
        "pattern": r"^NW-\d{6}$",
        "examples": ["NW-482913"],
    }
    email = {"type": "string", "format": "email"}
    headers = {"Authorization": f"Bearer {token}"}
    return [
        {
            "name": "order_status",
            "title": "Order status",
            "description": "Look up the live status, carrier and delivery date of the "
            "customer's order by its order number.",
            "examples": "\n".join(
                [
                    "Where is my order?",
                    "What is the status of my order NW-482913?",
                    "Has my order shipped yet?",
                    "When will my order arrive?",
                    "Track my order",
                ]
            ),
            "parameters": {
                "type": "object",
                "properties": {"order_number": order_number, "email": email},
                "required": ["order_number", "email"],
            },
            "method": "GET",
            "url_template": base_url.rstrip("/") + "/orders/{order_number}",
            "headers": headers,
            "timeout_seconds": 5.0,
            "result_fields": ["order_number", "status", "carrier", "estimated_delivery", "items"],
            "changes_data": False,
            "identity_bindings": {"email": "email"},
        },
        {
            "name": "cancel_order",
            "title": "Cancel order",
            "description": "Cancel the customer's order by its order number (only before it "
            "ships).",
            "examples": "\n".join(
                [
                    "Cancel my order NW-517204",
                    "I want to cancel my order",
                    "Please cancel order NW-482913",
                ]
            ),
            "parameters": {
                "type": "object",
                "properties": {"order_number": order_number, "email": email},
                "required": ["order_number", "email"],
            },
            "method": "POST",
            "url_template": base_url.rstrip("/") + "/orders/{order_number}/cancel",
            "headers": headers,
            "timeout_seconds": 8.0,
            "result_fields": ["status", "message"],
            "changes_data": True,
            "identity_bindings": {"email": "email"},
        },
    ]
