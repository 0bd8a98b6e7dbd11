"""The one domain error type. A single DRF exception handler turns it into a clear 4xx body."""

from __future__ import annotations

from typing import Any


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


class TenantScopeError(RuntimeError):
    """A query on tenant-owned rows without a tenant: a programming error, never user input."""
