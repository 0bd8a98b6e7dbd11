"""Writes for actions: definitions (with encrypted headers) and the audit of every call.

`call_execute` is the one way an action's HTTP call runs: it records the call, runs it once
through `runner.call`, stores the outcome, counts it and emits `action.executed`.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.actions import crypto, matching, runner
from apps.actions.models import FINAL_STATUSES, Action, ActionCall, CallStatus, HttpMethod
from apps.core.errors import ApplicationError
from apps.core.observability import metrics
from apps.events.models import EventType
from apps.events.services import event_record

logger = logging.getLogger(__name__)

HEADERS_PURPOSE = "headers"
PENDING_PURPOSE = "pending-params"
MASK = "••••"
IDENTITY_CLAIMS = frozenset({"sub", "email", "name"})
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")
# Headers the call sets itself (or that would let a definition smuggle a second request).
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "content-type"}
)
EDITABLE_FIELDS = (
    "name",
    "title",
    "description",
    "examples",
    "parameters",
    "method",
    "url_template",
    "timeout_seconds",
    "result_fields",
    "changes_data",
    "identity_bindings",
    "is_active",
)


# --- Definitions --------------------------------------------------------------------------------


def _problems(action: Action) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    for message in matching.schema_problems(action.parameters):
        add("parameters", message)
    props = matching.properties(action)
    if action.method not in HttpMethod.values:
        add("method", f"Use one of {', '.join(HttpMethod.values)}.")
    template = action.url_template or ""
    if not template.startswith(("http://", "https://")):
        add("url_template", "The URL must start with http:// or https://.")
    host_part = template.split("://", 1)[-1].split("/", 1)[0]
    if "{" in host_part:
        add("url_template", "Placeholders may only appear after the host (in the path or query).")
    for name in runner.placeholders(template):
        if name not in props:
            add("url_template", f"{{{name}}} is not one of the parameters.")
    if not isinstance(action.identity_bindings, dict):
        add("identity_bindings", "A mapping from parameter to claim is expected.")
    else:
        for param, claim in action.identity_bindings.items():
            if param not in props:
                add("identity_bindings", f"{param} is not one of the parameters.")
            if not isinstance(claim, str) or not (
                claim in IDENTITY_CLAIMS or re.fullmatch(r"claims\.[A-Za-z0-9_]{1,64}", claim)
            ):
                add(
                    "identity_bindings",
                    f"{param}: bind to sub, email, name or claims.<name> of the end-user token.",
                )
    if not isinstance(action.result_fields, list) or not all(
        isinstance(f, str) and f for f in action.result_fields
    ):
        add("result_fields", "A list of dotted paths into the response is expected.")
    if not 0.5 <= float(action.timeout_seconds or 0) <= settings.ACTIONS_MAX_TIMEOUT:
        add("timeout_seconds", f"Between 0.5 and {settings.ACTIONS_MAX_TIMEOUT} seconds.")
    if not (action.description or "").strip():
        add("description", "Say what the action does: it is how the assistant chooses it.")
    return problems


def headers_check(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise ApplicationError("Headers must be an object of name: value.", code="invalid")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ApplicationError(f"{str(name)[:40]!r} is not a header name.", code="invalid")
        if name.lower() in _RESERVED_HEADERS:
            raise ApplicationError(f"The call sets {name} itself.", code="invalid")
        if not isinstance(value, str) or "\n" in value or "\r" in value or len(value) > 4000:
            raise ApplicationError(f"The value of {name} must be one line of text.", code="invalid")
        checked[name] = value
    return checked


def _set_headers(action: Action, headers: dict[str, str]) -> None:
    action.header_names = sorted(headers)
    action.headers_encrypted = crypto.seal(headers, purpose=HEADERS_PURPOSE)


def action_headers(action: Action) -> dict[str, str]:
    """The stored header values (decrypted): only for making the call."""
    return dict(crypto.unseal(action.headers_encrypted, purpose=HEADERS_PURPOSE))


def action_check(action: Action) -> None:
    """ApplicationError (extra: field → messages) when `action` cannot be saved."""
    _full_clean(action)


def _full_clean(action: Action) -> None:
    problems = _problems(action)
    if problems:
        first = next(iter(problems.values()))[0]
        raise ApplicationError(first, extra=problems, code="invalid")
    duplicate = (
        Action.objects.for_tenant(action.tenant_id).filter(name=action.name).exclude(pk=action.pk)
    )
    if duplicate.exists():
        raise ApplicationError(f"There is already an action named {action.name}.", code="invalid")


@transaction.atomic
def action_create(*, tenant: Any, headers: dict[str, str] | None = None, **fields: Any) -> Action:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown action fields: {', '.join(sorted(unknown))}")
    action = Action(tenant=tenant, **fields)
    action.method = str(action.method).upper()
    _set_headers(action, headers_check(headers))
    _full_clean(action)
    action.save()
    return action


@transaction.atomic
def action_update(
    *, action: Action, headers: dict[str, str] | None = None, **fields: Any
) -> Action:
    """Change fields; `headers` replaces every stored header (None keeps them)."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown action fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(action, name, value)
    action.method = str(action.method).upper()
    if headers is not None:
        _set_headers(action, headers_check(headers))
    _full_clean(action)
    action.save()
    return action


def action_delete(*, action: Action) -> None:
    action.delete()  # the calls keep their audit rows (action set to NULL, name kept)


def private_targets_allowed(tenant: Any) -> bool:
    """Whether this tenant's actions may reach loopback/private addresses (its own network).

    Off unless the installation allows it for every tenant, or an operator set
    `actions_allow_private` in the tenant's settings (only superusers edit those).
    """
    if settings.ACTIONS_ALLOW_PRIVATE_TARGETS:
        return True
    return bool((getattr(tenant, "settings", None) or {}).get("actions_allow_private") is True)


# --- Calls --------------------------------------------------------------------------------------


def mask_params(action: Action | None, params: dict[str, Any]) -> dict[str, Any]:
    """`params` for the audit: parameters marked writeOnly or x-sensitive are masked."""
    props = matching.properties(action) if action is not None else {}
    masked = {}
    for name, value in params.items():
        schema = props.get(name, {})
        sensitive = schema.get("writeOnly") is True or schema.get("x-sensitive") is True
        masked[name] = MASK if sensitive else value
    return masked


def call_open(
    *,
    action: Action,
    conversation: Any,
    message: Any,
    status: str,
    params: dict[str, Any],
    error: str = "",
) -> ActionCall:
    """A call that has not run: waiting for a parameter or a confirmation, or refused."""
    call = ActionCall.objects.create(
        tenant_id=action.tenant_id,
        action=action,
        action_name=action.name,
        conversation=conversation,
        message=message,
        params=mask_params(action, params),
        pending_encrypted=(
            crypto.seal(params, purpose=PENDING_PURPOSE) if status not in FINAL_STATUSES else ""
        ),
        status=CallStatus(status),
        error=error[:2000],
        finished_at=timezone.now() if status in FINAL_STATUSES else None,
    )
    if status == CallStatus.REFUSED:
        metrics.action_call_observed(status=status, kind="refused")
    return call


def call_pending_params(call: ActionCall) -> dict[str, Any]:
    return dict(crypto.unseal(call.pending_encrypted, purpose=PENDING_PURPOSE))


def call_supersede(*, call: ActionCall) -> None:
    """A call that waited for a parameter or confirmation the customer moved on from."""
    ActionCall.objects.for_tenant(call.tenant_id).filter(
        pk=call.pk, status__in=[CallStatus.NEEDS_PARAMETERS, CallStatus.PENDING_CONFIRMATION]
    ).update(
        status=CallStatus.DECLINED,
        pending_encrypted="",
        error="superseded",
        finished_at=timezone.now(),
    )


def call_claim(*, conversation: Any, public_id: Any, confirmed_by: str) -> ActionCall | None:
    """Take a call waiting for confirmation to running, once: a second confirmation of the same
    call (a doubled frame, a second tab) gets None."""
    now = timezone.now()
    tenant_id = conversation.tenant_id
    claimed = (
        ActionCall.objects.for_tenant(tenant_id)
        .filter(
            public_id=public_id,
            conversation=conversation,
            status=CallStatus.PENDING_CONFIRMATION,
            created_at__gte=now - timedelta(seconds=settings.ACTIONS_PENDING_SECONDS),
        )
        .update(status=CallStatus.RUNNING, confirmed_by=confirmed_by[:300], confirmed_at=now)
    )
    if not claimed:
        return None
    calls = ActionCall.objects.for_tenant(tenant_id).select_related("action")
    return calls.get(public_id=public_id)


def call_decline(*, conversation: Any, public_id: Any, by: str) -> bool:
    return bool(
        ActionCall.objects.for_tenant(conversation.tenant_id)
        .filter(
            public_id=public_id,
            conversation=conversation,
            status=CallStatus.PENDING_CONFIRMATION,
        )
        .update(
            status=CallStatus.DECLINED,
            pending_encrypted="",
            confirmed_by=by[:300],
            finished_at=timezone.now(),
        )
    )


def call_execute(
    *,
    action: Action,
    params: dict[str, Any],
    conversation: Any = None,
    message: Any = None,
    call: ActionCall | None = None,
    transport: Any = None,
) -> tuple[ActionCall, runner.Outcome]:
    """Run `action` with `params` once and record it (a new call row, or the claimed `call`)."""
    if call is None:
        call = ActionCall.objects.create(
            tenant_id=action.tenant_id,
            action=action,
            action_name=action.name,
            conversation=conversation,
            message=message,
            params=mask_params(action, params),
            status=CallStatus.RUNNING,
        )
    try:
        headers = action_headers(action)
    except crypto.SecretUnreadable:
        outcome = runner.Outcome(
            False, "bad_request", error="the stored headers cannot be read: enter them again"
        )
    else:
        outcome = runner.call(
            method=action.method,
            url_template=action.url_template,
            params=params,
            headers=headers,
            timeout=min(float(action.timeout_seconds), settings.ACTIONS_MAX_TIMEOUT),
            result_fields=list(action.result_fields or []),
            allow_private=private_targets_allowed(action.tenant),
            transport=transport,
        )
    call_finish(call=call, action=action, outcome=outcome)
    return call, outcome


@transaction.atomic
def call_finish(*, call: ActionCall, action: Action | None, outcome: runner.Outcome) -> ActionCall:
    if outcome.ok:
        call.status = CallStatus.SUCCEEDED
    elif outcome.kind == "refused_address":
        call.status = CallStatus.REFUSED
    else:
        call.status = CallStatus.FAILED
    call.http_status = outcome.http_status
    call.latency_ms = outcome.latency_ms
    call.result = outcome.shown
    call.error = "" if outcome.ok else f"{outcome.kind}: {outcome.error}"[:2000]
    call.pending_encrypted = ""
    call.finished_at = timezone.now()
    call.save(
        update_fields=[
            "status",
            "http_status",
            "latency_ms",
            "result",
            "error",
            "pending_encrypted",
            "finished_at",
            "updated_at",
        ]
    )
    metrics.action_call_observed(
        status=call.status, kind=outcome.kind, latency_ms=outcome.latency_ms
    )
    conversation = call.conversation
    event_record(
        tenant=call.tenant,
        type=EventType.ACTION_EXECUTED,
        payload={
            "call_id": str(call.public_id),
            "action": call.action_name,
            "action_id": str(action.public_id) if action is not None else None,
            "conversation_id": str(conversation.public_id) if conversation is not None else None,
            "status": call.status,
            "outcome": outcome.kind,
            "http_status": call.http_status,
            "latency_ms": call.latency_ms,
            "changes_data": bool(action and action.changes_data),
            "confirmed_by": call.confirmed_by,
            "params": call.params,
        },
    )
    return call
