"""Admin sign-in with a limit on failures, per account and per client address.

After `LOGIN_FAILURES_PER_ACCOUNT` wrong passwords for one account (or
`LOGIN_FAILURES_PER_ADDRESS` from one address) within `LOGIN_LOCKOUT_SECONDS`, sign-in is
refused for that long even with the right password, so passwords cannot be guessed at the
speed of the server. The counters live in the shared cache (Redis), so every web process
counts together; the address is the real client's behind trusted proxies (supportai/edge.py).
A successful sign-in clears the account's counter. If the cache is down, sign-in is not
throttled (and the failure is logged): locking every person out would be the bigger outage.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

logger = logging.getLogger(__name__)


def _keys(request: Any, username: str) -> list[tuple[str, int]]:
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    address = (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"
    return [
        (f"login-failures:account:{account}", settings.LOGIN_FAILURES_PER_ACCOUNT),
        (f"login-failures:address:{address}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def _locked(keys: list[tuple[str, int]]) -> bool:
    try:
        counts = cache.get_many([key for key, _ in keys])
    except Exception:
        logger.warning("sign-in throttle: cache unavailable; not throttling", exc_info=True)
        return False
    return any((counts.get(key) or 0) >= limit for key, limit in keys)


def _record_failure(keys: list[tuple[str, int]]) -> None:
    timeout = settings.LOGIN_LOCKOUT_SECONDS
    try:
        for key, _ in keys:
            # The window restarts with every failure: a slow, steady guesser stays locked out.
            if not cache.add(key, 1, timeout=timeout):
                try:
                    cache.incr(key)
                except ValueError:
                    cache.set(key, 1, timeout=timeout)
                cache.touch(key, timeout)
    except Exception:
        logger.warning("sign-in throttle: cache unavailable; failure not counted", exc_info=True)


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": (
            "Too many failed sign-ins for this account or from this address. "
            "Try again in %(minutes)s minutes."
        ),
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        keys = _keys(self.request, username)
        if _locked(keys):
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            _record_failure(keys)
            raise
        try:
            cache.delete(keys[0][0])
        except Exception:
            logger.warning("sign-in throttle: cache unavailable", exc_info=True)
        return cleaned
