"""What the web process believes about a request before any view runs: who sent it, how big.

- `TrustedProxyMiddleware` (ASGI, HTTP and websockets): behind reverse proxies listed in
  `TRUSTED_PROXIES`, the client is the right-most `X-Forwarded-For` address that is not one of
  them; a peer that is not a trusted proxy is the client, whatever it claims. Rate limits,
  sign-in throttling and logs then key on the real customer instead of the load balancer, and
  nobody can pick a fresh address per request by sending the header themselves.
- `ApiBodyLimitMiddleware` (Django): API requests may carry at most `API_MAX_BODY_BYTES`,
  except file uploads and knowledge sources (pasted text), which may carry `UPLOAD_MAX_BYTES`;
  larger ones get the API's 413 error body before anything reads them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.api.errors import error_body

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    """`TRUSTED_PROXIES` entries (addresses or CIDR networks) as networks; ValueError if bad."""
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip()]


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip().strip('"')
    if value.startswith("["):  # [v6]:port
        value = value[1 : value.find("]")] if "]" in value else value
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: list[str], trusted: list[Network]
) -> str | None:
    """The client's address given the TCP peer, the `X-Forwarded-For` values and the proxies.

    Walks from the peer leftwards through the header while the address is a trusted proxy; the
    first untrusted address is the client. A malformed entry stops the walk at the proxy that
    wrote it (that proxy's peer is then taken as the client).
    """
    if peer is None:
        return None

    def is_trusted(address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in network for network in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    client = peer
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            break
        client = ip.compressed
        if not any(ip in network for network in trusted):
            break
    return client


class TrustedProxyMiddleware:
    """ASGI middleware setting `scope["client"]` to the real client (see module docstring)."""

    def __init__(self, app: Any, trusted: Iterable[str] | None = None) -> None:
        self.app = app
        self.trusted = parse_networks(settings.TRUSTED_PROXIES if trusted is None else trusted)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket") and self.trusted and scope.get("client"):
            peer_host = scope["client"][0]
            forwarded = [
                value.decode("latin1")
                for name, value in scope.get("headers", [])
                if name == b"x-forwarded-for"
            ]
            host = client_address(peer_host, forwarded, self.trusted)
            if host != peer_host:
                scope = {**scope, "client": (host, 0)}
        return await self.app(scope, receive, send)


API_PREFIX = "/api/"
# Knowledge sources take file uploads and pasted text (up to KNOWLEDGE_TEXT_MAX_CHARS): the
# upload limit applies to them, whatever the body's type.
KNOWLEDGE_SOURCES_PREFIX = "/api/v1/knowledge/sources/"


class ApiBodyLimitMiddleware:
    """413 for API bodies over `API_MAX_BODY_BYTES` (file uploads: `UPLOAD_MAX_BYTES`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            content_type = request.META.get("CONTENT_TYPE", "")
            limit = (
                settings.DATA_UPLOAD_MAX_MEMORY_SIZE
                if content_type.startswith("multipart/form-data")
                or request.path.startswith(KNOWLEDGE_SOURCES_PREFIX)
                else settings.API_MAX_BODY_BYTES
            )
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return JsonResponse(
                    error_body(
                        code="too_large",
                        message=f"The request body is larger than {limit:,} bytes.",
                        details={"limit": limit},
                    ),
                    status=413,
                )
        return self.get_response(request)
