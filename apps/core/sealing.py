"""Secrets at rest that must stay readable by the product (webhook signing secrets, the headers
of a company's action endpoints): sealed with Fernet (AES-128-CBC + HMAC-SHA256) under a key
derived from SECRET_KEY for one purpose, so a database dump or backup alone reveals none of them.

Keys: one per purpose, HMAC-SHA256(SECRET_KEY, purpose). Values sealed under a key in
SECRET_KEY_FALLBACKS still open, so SECRET_KEY can be rotated the way Django rotates it (put the
old key in SECRET_KEY_FALLBACKS until every secret has been written again); a value sealed under
a key that is in neither cannot be opened and raises `SecretUnreadable`.

Secrets the product only has to recognise (API keys) are hashed instead (apps/integrations).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class SecretUnreadable(Exception):
    """Sealed under another SECRET_KEY (not among the fallbacks), or damaged."""


@functools.lru_cache(maxsize=64)
def _fernet_for(secret_key: str, purpose: str) -> Fernet:
    # Cached: tenants and subscriptions open their secrets whenever they are loaded.
    derived = hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def _cipher(purpose: str) -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(key, purpose) for key in keys])


def seal(plaintext: str, *, purpose: str) -> str:
    """`plaintext` sealed under the current key ("" stays "")."""
    if not plaintext:
        return ""
    return _cipher(purpose).encrypt(plaintext.encode()).decode("ascii")


def unseal(token: str, *, purpose: str) -> str:
    """The plaintext of a sealed value ("" stays "")."""
    if not token:
        return ""
    try:
        return _cipher(purpose).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable(purpose) from exc


class SealedTextField(models.TextField):
    """A text column holding the sealed form of its value; Python code sees the plaintext.

    A value that cannot be opened (SECRET_KEY changed without a fallback) loads as "", so the row
    still loads (in the admin, in lists) and whatever needs the secret refuses to run without it.
    Sealing is randomised: the column cannot be filtered on, by design.
    """

    def __init__(self, *args: Any, purpose: str, **kwargs: Any) -> None:
        self.purpose = purpose
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[Any, ...]:
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None:
            return value
        try:
            return unseal(value, purpose=self.purpose)
        except SecretUnreadable:
            return ""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return value
        return seal(value, purpose=self.purpose)
