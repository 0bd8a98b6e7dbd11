"""Structured logs: structlog in front of the standard library, JSON or console lines.

Everything that logs (our `logging.getLogger(__name__)` calls, Django, Celery, libraries) goes
through one `ProcessorFormatter`, so every line carries the same context: the request id, the
tenant, the conversation and the Celery task, bound in `contextvars` by:

- `RequestContextMiddleware` (request id from/to `X-Request-ID`, method, path; tenant when set);
- `bind_tenant()` / `bind_conversation()` / `log_context()` for views, consumers and tasks;
- Celery's `task_prerun`/`task_postrun` signals (task id and name), connected by
  `connect_celery_signals()` from `apps.core.observability.hooks`.

`LOG_FORMAT=json` (production default) writes one JSON object per line; `console` (default when
DEBUG) writes aligned, coloured lines for people.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from celery import signals

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only if it is short and plain, so logs cannot be forged or flooded.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Probes and scrapes that would drown the access log at info level.
_QUIET_PATHS = ("/healthz", "/readyz", "/metrics")

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(*, level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """The `LOGGING` dict for settings: one handler, rendered by structlog."""
    if fmt not in {"json", "console"}:
        raise ValueError(f"log format must be json or console, not {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": "structlog.stdlib.ProcessorFormatter",
                "processors": _final_processors(fmt),
                "foreign_pre_chain": [
                    *_SHARED_PROCESSORS,
                    structlog.stdlib.ExtraAdder(),
                    structlog.stdlib.PositionalArgumentsFormatter(),
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structlog"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # The access line comes from RequestContextMiddleware, with the request id.
            "django.server": {"level": "WARNING"},
            "uvicorn.access": {"level": "WARNING"},
        },
    }


def _final_processors(fmt: str) -> list[Any]:
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        tail: list[Any] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=True)
        tail = []
    return [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer]


def configure_logging(config: dict[str, Any]) -> None:
    """`LOGGING_CONFIG` callable: apply the dict, then route structlog through the stdlib."""
    logging.config.dictConfig(config)
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)


# --- Context helpers ------------------------------------------------------------------------------


def bind_tenant(tenant: Any) -> None:
    """Add the tenant (id and slug) to every log line of the current request, task or consumer."""
    if tenant is None:
        return
    values: dict[str, Any] = {"tenant_id": getattr(tenant, "pk", tenant)}
    slug = getattr(tenant, "slug", None)
    if slug:
        values["tenant"] = slug
    structlog.contextvars.bind_contextvars(**values)


def bind_conversation(conversation: Any) -> None:
    """Add the conversation's public id (and its tenant id) to the log context."""
    if conversation is None:
        return
    public_id = getattr(conversation, "public_id", conversation)
    values: dict[str, Any] = {"conversation_id": str(public_id)}
    tenant_id = getattr(conversation, "tenant_id", None)
    if tenant_id is not None:
        values["tenant_id"] = tenant_id
    structlog.contextvars.bind_contextvars(**values)


@contextlib.contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind `values` for the block only (a consumer's receive handler, one loop iteration)."""
    with structlog.contextvars.bound_contextvars(**values):
        yield


def clean_request_id(value: str | None) -> str:
    if value and _REQUEST_ID_RE.match(value):
        return value
    return uuid.uuid4().hex


# --- Middleware -----------------------------------------------------------------------------------

_access_logger = logging.getLogger("supportai.request")


class RequestContextMiddleware:
    """Bind a request id (the caller's `X-Request-ID` or a new one) and answer with it.

    Sync and async: under ASGI it runs in the event loop, so the context it binds is copied into
    the thread a sync view runs in. One access line per request is logged when it ends.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        started = self._start(request)
        try:
            response = self.get_response(request)
        except BaseException:
            structlog.contextvars.clear_contextvars()
            raise
        return self._finish(request, response, started)

    async def __acall__(self, request: Any) -> Any:
        started = self._start(request)
        try:
            response = await self.get_response(request)
        except BaseException:
            structlog.contextvars.clear_contextvars()
            raise
        return self._finish(request, response, started)

    def _start(self, request: Any) -> float:
        structlog.contextvars.clear_contextvars()
        request_id = clean_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        structlog.contextvars.bind_contextvars(
            request_id=request_id, method=request.method, path=request.path
        )
        return time.perf_counter()

    def _finish(self, request: Any, response: Any, started: float) -> Any:
        response[REQUEST_ID_HEADER] = request.request_id
        # A view that resolved a tenant may leave it on the request for the access line.
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            bind_tenant(tenant)
        level = logging.DEBUG if request.path.startswith(_QUIET_PATHS) else logging.INFO
        _access_logger.log(
            level,
            "request finished",
            extra={
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "user_id": getattr(getattr(request, "user", None), "pk", None),
            },
        )
        structlog.contextvars.clear_contextvars()
        return response


# --- Celery ---------------------------------------------------------------------------------------


def _task_prerun(
    task_id: str | None = None, task: Any = None, kwargs: Any = None, **_: Any
) -> None:
    structlog.contextvars.clear_contextvars()
    values: dict[str, Any] = {"task_id": task_id, "task": getattr(task, "name", None)}
    # Tasks take the tenant id as a keyword argument (STYLE.md); bind it when present.
    if isinstance(kwargs, dict) and kwargs.get("tenant_id") is not None:
        values["tenant_id"] = kwargs["tenant_id"]
    structlog.contextvars.bind_contextvars(**values)


def _task_postrun(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


def connect_celery_signals() -> None:
    """Bind the Celery task id and name to every log line a task writes (idempotent)."""
    signals.task_prerun.connect(_task_prerun, weak=False, dispatch_uid="supportai.log.prerun")
    signals.task_postrun.connect(_task_postrun, weak=False, dispatch_uid="supportai.log.postrun")
