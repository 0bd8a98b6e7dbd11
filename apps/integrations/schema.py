"""drf-spectacular extensions (imported from IntegrationsConfig.ready, by the hooks)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.integrations.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`sk_live_…`) in `Authorization: Bearer` or `X-Api-Key`.",
        }


# Every error the API answers has one body (apps.core.api.errors.error_body); the schema says so for
# each status an operation can answer with, so clients (and schemathesis) can rely on it.
ERROR_STATUSES = {
    "400": "Invalid input; `details` names the fields.",
    "401": "The API key is missing, unknown, revoked or expired.",
    "403": "The key lacks the scope (or the member the role).",
    "404": "No such object for this tenant (or an invalid cursor).",
    "409": "Conflict (a duplicate, or the same Idempotency-Key still in progress).",
    "415": "Unsupported request body type.",
    "422": "The Idempotency-Key was used for a different request.",
    "429": "Rate limit reached; retry after `Retry-After` seconds.",
}


def add_error_responses(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error body and the statuses that use it."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {},
                },
            }
        },
    }
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(status, {"description": description, "content": body})
    return result
