"""Action secrets at rest: header values (API tokens) and parameters waiting for a confirmation.

Encrypted with Fernet under a key derived from SECRET_KEY for this purpose, as the API's
idempotency records are (apps/integrations/idempotency.py): a database dump alone does not
reveal a company's API tokens. Rotating SECRET_KEY makes stored headers unreadable; the admin
then has to enter them again (the action refuses to run rather than send no header).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretUnreadable(Exception):
    """Stored under another SECRET_KEY (or damaged)."""


def _cipher(purpose: str) -> Fernet:
    derived = hmac.new(
        settings.SECRET_KEY.encode(), f"actions:{purpose}".encode(), hashlib.sha256
    ).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(value: Any, *, purpose: str) -> str:
    """`value` (JSON) encrypted; "" for an empty value."""
    if not value:
        return ""
    return _cipher(purpose).encrypt(json.dumps(value).encode()).decode("ascii")


def unseal(token: str, *, purpose: str) -> Any:
    if not token:
        return {}
    try:
        return json.loads(_cipher(purpose).decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable(purpose) from exc
