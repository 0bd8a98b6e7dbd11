"""One HTTP call of an action, with the crawler's and webhooks' outbound rules.

- The URL must be http(s); placeholders `{name}` are filled with URL-encoded parameter values,
  the other parameters go in the query string (GET, DELETE) or a JSON body.
- The connection goes only to public addresses (apps/core/netguard.py: resolved once, checked,
  connected to the checked address) unless the tenant may reach private ones.
- No redirects, a deadline for the whole call (not per read), and at most
  ACTIONS_MAX_RESPONSE_BYTES of response; the answer must be JSON.
- Only the action's result fields leave this module for the customer.

Nothing here retries: a call that changes data must not run twice, and a lookup that failed is
better answered plainly now than slowly.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings

from apps.core import netguard

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
USER_AGENT = "SupportAI-Actions/1.0"


@dataclass
class Outcome:
    ok: bool
    # succeeded | not_found (403/404) | refused_address | timeout | connection | http_error |
    # too_large | bad_response | bad_request
    kind: str
    http_status: int | None = None
    latency_ms: int = 0
    shown: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def placeholders(url_template: str) -> list[str]:
    return _PLACEHOLDER.findall(url_template)


def build_request(
    *, method: str, url_template: str, params: dict[str, Any]
) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """(url, query, json body) for `params`; ValueError for a URL that cannot be built."""
    names = placeholders(url_template)
    absent = [n for n in names if n not in params]
    if absent:
        raise ValueError(f"the URL needs {', '.join(absent)}")
    url = _PLACEHOLDER.sub(lambda m: quote(str(params[m.group(1)]), safe=""), url_template)
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("the URL must be http(s)://host/…")
    rest = {k: v for k, v in params.items() if k not in names}
    if method in {"GET", "DELETE"}:
        return url, (rest or None), None
    return url, None, rest


def pick(data: Any, path: str) -> Any:
    """The value at a dotted path ("order.status", "items.0.name"), or None."""
    value = data
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return value


def shown_fields(data: Any, result_fields: list[str]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for path in result_fields or []:
        value = pick(data, str(path))
        scalar = value is not None and not isinstance(value, dict | list)
        flat_list = isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)
        if scalar or flat_list:
            shown[str(path)] = value
    return shown


def call(
    *,
    method: str,
    url_template: str,
    params: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
    result_fields: list[str],
    allow_private: bool,
    transport: httpx.BaseTransport | None = None,
) -> Outcome:
    """Run one call; never raises for what the other side (or the network) does."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        url, query, body = build_request(method=method, url_template=url_template, params=params)
    except ValueError as exc:
        return Outcome(False, "bad_request", error=str(exc))
    limit = settings.ACTIONS_MAX_RESPONSE_BYTES
    deadline = started + timeout
    request_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        with (
            httpx.Client(
                transport=transport or netguard.guarded_transport(allow_private=allow_private),
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream(method, url, params=query, json=body, headers=request_headers) as reply,
        ):
            received = bytearray()
            for piece in reply.iter_bytes():
                received.extend(piece)
                if len(received) > limit:
                    return Outcome(
                        False,
                        "too_large",
                        reply.status_code,
                        elapsed(),
                        error=f"the response is larger than {limit} bytes",
                    )
                if time.monotonic() > deadline:
                    return Outcome(False, "timeout", reply.status_code, elapsed(), error="deadline")
            status = reply.status_code
    except netguard.PrivateAddressError as exc:
        return Outcome(False, "refused_address", None, elapsed(), error=str(exc))
    except httpx.TimeoutException as exc:
        return Outcome(False, "timeout", None, elapsed(), error=f"timed out ({exc!r})")
    except httpx.HTTPError as exc:
        # The guarded backend raises httpcore errors that httpx wraps: say which it was.
        kind = (
            "refused_address"
            if "private" in str(exc) or "local name" in str(exc)
            else ("connection")
        )
        return Outcome(False, kind, None, elapsed(), error=str(exc)[:500])
    if status in {403, 404}:
        # The company's system does not show this to this customer (or it does not exist).
        return Outcome(False, "not_found", status, elapsed(), error=f"HTTP {status}")
    if status >= 300:
        return Outcome(False, "http_error", status, elapsed(), error=f"HTTP {status}")
    try:
        data = json.loads(bytes(received) or b"null")
    except ValueError:
        return Outcome(False, "bad_response", status, elapsed(), error="the answer is not JSON")
    return Outcome(True, "succeeded", status, elapsed(), shown=shown_fields(data, result_fields))
