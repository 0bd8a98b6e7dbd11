"""Webhook signatures: what SupportAI sends and what a receiver checks.

Each delivery carries `X-SupportAI-Timestamp` (unix seconds) and
`X-SupportAI-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{raw_body}")>`. Right after a
secret rotation the header holds two comma-separated `v1=` values (new secret, then old), so a
receiver that still has the old secret keeps verifying. Receivers must reject timestamps more
than `tolerance` seconds away from their clock: that is what stops a captured request from being
replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_VERSION = "v1"


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def compute_signature(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of `{timestamp}.{body}` under `secret`."""
    message = f"{timestamp}.".encode() + _as_bytes(body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    return ",".join(f"{SIGNATURE_VERSION}={compute_signature(s, timestamp, body)}" for s in secrets)


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    header: str,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> bool:
    """True if `header` holds a valid `v1` signature of `body` made within `tolerance` seconds.

    `body` must be the raw request body exactly as received (not re-serialized JSON).
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    expected = compute_signature(secret, sent_at, body)
    for part in (header or "").split(","):
        version, _, value = part.strip().partition("=")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value, expected):
            return True
    return False
