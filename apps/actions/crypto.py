"""Action secrets at rest: header values (API tokens) and parameters waiting for a confirmation,
as JSON sealed with the product's one sealing scheme (apps/core/sealing.py, purpose
`actions:<what>`): a database dump alone does not reveal a company's API tokens. A SECRET_KEY
rotated without keeping the old one in SECRET_KEY_FALLBACKS makes stored headers unreadable; the
admin then enters them again (the action refuses to run rather than send no header).
"""

from __future__ import annotations

import json
from typing import Any

from apps.core import sealing
from apps.core.sealing import SecretUnreadable

__all__ = ["SecretUnreadable", "seal", "unseal"]


def seal(value: Any, *, purpose: str) -> str:
    """`value` (JSON) sealed; "" for an empty value."""
    if not value:
        return ""
    return sealing.seal(json.dumps(value), purpose=f"actions:{purpose}")


def unseal(token: str, *, purpose: str) -> Any:
    if not token:
        return {}
    try:
        return json.loads(sealing.unseal(token, purpose=f"actions:{purpose}"))
    except ValueError as exc:
        raise SecretUnreadable(purpose) from exc
