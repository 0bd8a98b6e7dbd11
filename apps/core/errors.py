"""The one domain error type, and how each transport shows it.

Services, selectors and edges raise `ApplicationError` (or a subclass); each transport maps it
in one place, so clients see the same codes and messages everywhere:

- the REST API: DRF's exception handler answers `error_body()` with `status_code`;
- plain Django views (HTTP chat, the agent console's endpoints): `error_response()`, the same
  body and status;
- websockets: `error_frame()`, a `{"type": "error", "code", "message", ...extra}` frame for a
  frame that cannot be carried out, and `close_code()` for a connection that is refused.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class ApplicationError(Exception):
    """A request that cannot be carried out, with a message people can read."""

    status_code = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        extra: dict[str, Any] | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class NotFoundError(ApplicationError):
    status_code = 404
    code = "not_found"


class PermissionDeniedError(ApplicationError):
    status_code = 403
    code = "permission_denied"


class ConflictError(ApplicationError):
    status_code = 409
    code = "conflict"


class RateLimitedError(ApplicationError):
    status_code = 429
    code = "rate_limited"


class TenantScopeError(RuntimeError):
    """A query on tenant-owned rows without a tenant: a programming error, never user input."""


def error_body(*, code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Every 4xx an HTTP client gets (API, chat endpoints, console endpoints) has this shape."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(exc: ApplicationError) -> JsonResponse:
    """`exc` for a plain Django view: the API's error body with the error's status."""
    return JsonResponse(
        error_body(code=exc.code, message=exc.message, details=exc.extra), status=exc.status_code
    )


def error_frame(exc: ApplicationError) -> dict[str, Any]:
    """`exc` as a websocket frame; `extra` travels in the frame (the `client_id` it is about)."""
    return {"type": "error", "code": exc.code, "message": exc.message, **exc.extra}


# A refused websocket closes with 4000 + the HTTP status; a tenant or conversation that is not
# the caller's closes as forbidden, as the handshake it replaces would have been.
_CLOSE_CODES = {401: 4401, 403: 4403, 404: 4403, 429: 4429}


def close_code(exc: ApplicationError) -> int:
    """The websocket close code for a connection refused with `exc`."""
    return _CLOSE_CODES.get(exc.status_code, 4400)
