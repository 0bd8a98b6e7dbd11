"""One error type, `ApplicationError`, shown the same way by every transport."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.utils.module_loading import import_string
from rest_framework.views import APIView

from apps.core import errors
from apps.core.errors import (
    ApplicationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)

CASES = [
    (ApplicationError("text is required.", {"text": ["Required."]}), 400, "invalid"),
    (NotFoundError("No such tenant."), 404, "not_found"),
    (PermissionDeniedError("Not here.", code="forbidden"), 403, "forbidden"),
    (ConflictError("Already taken."), 409, "conflict"),
    (RateLimitedError("Too many messages; try again in a minute."), 429, "rate_limited"),
    (ApplicationError("Too large.", code="too_large", status_code=413), 413, "too_large"),
]


@pytest.mark.parametrize(("exc", "status", "code"), CASES)
def test_plain_views_answer_the_api_error_body(exc, status, code):
    # The REST API's handler, wherever settings name it.
    exception_handler = import_string(settings.REST_FRAMEWORK["EXCEPTION_HANDLER"])
    response = errors.error_response(exc)
    body = json.loads(response.content)
    assert response.status_code == status
    assert body == {"error": {"code": code, "message": exc.message, "details": exc.extra}}
    # The REST API answers the same body and status for the same error.
    request = APIView().initialize_request(RequestFactory().get("/"))
    api = exception_handler(exc, {"request": request})
    assert (api.status_code, api.data) == (status, body)


@pytest.mark.parametrize(("exc", "status", "code"), CASES)
def test_websockets_get_an_error_frame_with_the_extra_fields(exc, status, code):
    assert errors.error_frame(exc) == {
        "type": "error",
        "code": code,
        "message": exc.message,
        **exc.extra,
    }


def test_refused_websockets_close_with_4000_plus_the_status():
    assert errors.close_code(PermissionDeniedError("no")) == 4403
    assert errors.close_code(RateLimitedError("slow down")) == 4429
    assert errors.close_code(ApplicationError("who?", status_code=401)) == 4401
    # Not the caller's tenant or conversation: refused like a forbidden handshake.
    assert errors.close_code(NotFoundError("No such tenant.")) == 4403
    assert errors.close_code(ApplicationError("bad")) == 4400


def test_the_chat_transports_have_no_envelope_of_their_own():
    from apps.assistant import views
    from apps.conversations import access
    from apps.workspace import views as console_views

    assert not hasattr(access, "Refused")
    assert not hasattr(views, "HttpError")
    assert not hasattr(console_views, "_error")
