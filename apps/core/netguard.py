"""Outbound requests the server makes for tenants (webhooks, crawled pages) stay on the internet.

A URL a tenant gives us must not become a way to reach the server's own network (server-side
request forgery). Two rules:

- an address is public only if it is globally routable after unwrapping the IPv6 forms that
  carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96` and
  `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo), so `64:ff9b::7f00:1` is loopback;
- the address checked is the address connected to: `guarded_transport()` resolves the name
  itself, refuses if any address is not public, and connects to the checked address (TLS still
  verifies the name), so a second DNS answer cannot swap in 127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

NAT64_NETWORKS = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)


class PrivateAddressError(httpx.ConnectError):
    """The name resolves to (or the URL names) a loopback, private or reserved address."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in network for network in NAT64_NETWORKS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address; the server part is public by design
    return None


def address_is_public(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for globally routable unicast addresses, IPv4 carried in IPv6 included."""
    try:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return address_is_public(embedded)
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int | None = None) -> list[str]:
    """The addresses `host` resolves to (itself when it is a literal address)."""
    host = host.strip("[]")
    try:
        return [ipaddress.ip_address(host).compressed]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


def public_addresses(host: str, port: int | None = None) -> list[str]:
    """`host`'s addresses, or PrivateAddressError if any of them is not public."""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise PrivateAddressError(f"{host} is a local name")
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise httpx.ConnectError(f"{host}: the name does not resolve ({exc})") from exc
    private = [a for a in addresses if not address_is_public(a)]
    if private or not addresses:
        raise PrivateAddressError(
            f"{host} resolves to a loopback, private or reserved address ({', '.join(private)})"
        )
    return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks and connects to the checked address in one step."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.inner = httpcore.SyncBackend()
        # Every address this backend connected to, and whether each was public.
        self.connected: list[tuple[str, bool]] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self.allow_private:
            try:
                addresses = resolve(host, port)
            except OSError as exc:
                raise httpcore.ConnectError(f"{host}: the name does not resolve ({exc})") from exc
        else:
            try:
                addresses = public_addresses(host, port)
            except httpx.ConnectError as exc:
                raise httpcore.ConnectError(str(exc)) from exc
        last_error: Exception | None = None
        for address in addresses:
            try:
                stream = self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            self.connected.append((address, address_is_public(address)))
            return stream
        raise last_error or httpcore.ConnectError(f"{host}: no address to connect to")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def guarded_transport(*, allow_private: bool = False) -> httpx.HTTPTransport:
    """An httpx transport that only connects to public addresses (unless `allow_private`).

    Environment proxies are ignored (`trust_env=False`): a proxy would resolve the name itself.
    The transport's `.backend.connected` lists where it connected.
    """
    transport = httpx.HTTPTransport(trust_env=False)
    backend = GuardedBackend(allow_private=allow_private)
    # httpx builds its connection pool without a way to pass a network backend; build the same
    # pool (same TLS context) with ours. Pinned httpx/httpcore versions; covered by tests.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=transport._pool._ssl_context,
        network_backend=backend,
    )
    transport.backend = backend  # type: ignore[attr-defined]
    return transport
