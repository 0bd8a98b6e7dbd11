"""Structured logs: JSON lines carrying request, tenant, conversation and Celery task ids."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from types import SimpleNamespace

import pytest
import structlog
from django.http import HttpResponse
from django.test import RequestFactory

from supportai import logging as slog


@pytest.fixture
def log_lines():
    """Route the root logger through the project's formatter into a buffer; yield a reader."""
    config = slog.logging_config(level="DEBUG", fmt="json")
    formatter = logging.config.DictConfigurator(config).configure_formatter(
        config["formatters"]["structlog"]
    )
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    structlog.contextvars.clear_contextvars()
    try:
        # Only the lines of the code under test (not asyncio's or a library's debug chatter).
        yield lambda: [
            parsed
            for parsed in (json.loads(line) for line in buffer.getvalue().splitlines() if line)
            if parsed.get("logger", "").startswith(("apps", "supportai", "x"))
        ]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        structlog.contextvars.clear_contextvars()


def test_request_lines_carry_the_request_id_and_tenant(log_lines):
    def view(request):
        logging.getLogger("apps.somewhere").info("inside the view %s", "ok")
        request.tenant = SimpleNamespace(pk=7, slug="acme")
        return HttpResponse("fine")

    middleware = slog.RequestContextMiddleware(view)
    request = RequestFactory().get("/dashboard/", HTTP_X_REQUEST_ID="abc-123")
    response = middleware(request)

    assert response["X-Request-ID"] == "abc-123"
    inside, access = log_lines()
    assert inside["event"] == "inside the view ok"
    assert inside["request_id"] == "abc-123" and inside["path"] == "/dashboard/"
    assert inside["level"] == "info" and inside["logger"] == "apps.somewhere"
    assert access["event"] == "request finished" and access["status"] == 200
    assert access["request_id"] == "abc-123" and access["tenant"] == "acme"
    assert access["tenant_id"] == 7 and "duration_ms" in access
    # Nothing leaks into the next request's lines.
    logging.getLogger("x").info("after")
    assert "request_id" not in log_lines()[-1]


async def test_async_requests_get_a_new_request_id(log_lines):
    async def view(request):
        structlog.get_logger("apps.async").info("async view")
        return HttpResponse("fine")

    middleware = slog.RequestContextMiddleware(view)
    response = await middleware(RequestFactory().get("/x"))
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    [line] = [line for line in log_lines() if line["event"] == "async view"]
    assert line["request_id"] == request_id


def test_conversation_and_task_context(log_lines):
    slog.bind_conversation(SimpleNamespace(public_id="c0ffee", tenant_id=3))
    logging.getLogger("apps.chat").warning("stream stalled")
    structlog.contextvars.clear_contextvars()

    task = SimpleNamespace(name="apps.analytics.tasks.rollup_day")
    slog._task_prerun(task_id="task-1", task=task, kwargs={"tenant_id": 5, "day": "2026-03-10"})
    logging.getLogger("apps.analytics").info("rolled up")
    slog._task_postrun()
    logging.getLogger("apps.analytics").info("outside")

    chat, in_task, outside = log_lines()
    assert chat["conversation_id"] == "c0ffee" and chat["tenant_id"] == 3
    assert in_task["task_id"] == "task-1" and in_task["tenant_id"] == 5
    assert in_task["task"] == "apps.analytics.tasks.rollup_day"
    assert "task_id" not in outside


def test_exceptions_are_one_json_line_with_the_traceback(log_lines):
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("apps.x").exception("it failed")
    [line] = log_lines()
    assert line["level"] == "error" and "ValueError: broken" in line["exception"]


def test_console_format_is_readable():
    config = slog.logging_config(level="INFO", fmt="console")
    formatter = logging.config.DictConfigurator(config).configure_formatter(
        config["formatters"]["structlog"]
    )
    record = logging.LogRecord("apps.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    text = formatter.format(record)
    assert "hello there" in text and not text.startswith("{")
    with pytest.raises(ValueError):
        slog.logging_config(fmt="xml")
