"""The live agent console: a page and the JSON endpoints its buttons call.

Every endpoint resolves the tenant from the URL among the person's own tenants, then the
conversation among those they may work (`selectors.conversations_visible`); anything else is
a 404, so other tenants' and other inboxes' conversations look like they do not exist.
"""

from __future__ import annotations

import json
from functools import wraps
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from apps.actions import selectors as action_selectors
from apps.core import permissions
from apps.core.errors import ApplicationError, NotFoundError, error_response
from apps.tenants.models import Role, Tenant
from apps.workspace import selectors, services, suggestions

MAX_REPLY_CHARS = 8000


def _staff_tenants(request: HttpRequest) -> QuerySet[Tenant]:
    return permissions.staff_tenants(user=request.user, min_role=Role.AGENT).order_by("name")


def console_visible(request: HttpRequest) -> bool:
    """Whether the console lets this person in (the admin sidebar shows its link only then)."""
    return _staff_tenants(request).exists()


def console_view(view: Any) -> Any:
    """Login required; the tenant (`slug` in the URL) must be one of the person's own."""

    @wraps(view)
    def wrapper(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if request.path.startswith("/console/api/"):
                return JsonResponse(
                    {"error": {"code": "not_authenticated", "message": "Sign in first."}},
                    status=401,
                )
            return redirect_to_login(request.get_full_path())
        try:
            tenant = permissions.resolve_tenant(user=request.user, slug=slug, min_role=Role.AGENT)
        except NotFoundError as exc:
            raise Http404(exc.message) from exc
        try:
            return view(request, tenant, *args, **kwargs)
        except ApplicationError as exc:
            return error_response(exc)

    return wrapper


def _conversation(request: HttpRequest, tenant: Tenant, conversation_id: str) -> Any:
    conversation = selectors.conversation_visible_get(
        user=request.user, tenant=tenant, public_id=conversation_id
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _conversation_json(conversation: Any) -> dict[str, Any]:
    return {
        **selectors.conversation_card(conversation),
        "inbox": selectors.conversation_inbox(conversation=conversation).name,
        "messages": [
            selectors.message_console_wire(m)
            for m in selectors.transcript(conversation=conversation)
        ],
        # What the assistant looked up or changed in the company's systems (apps/actions).
        "action_calls": action_selectors.call_console_rows(conversation=conversation),
    }


# --- Pages ------------------------------------------------------------------------------------


def console_home(request: HttpRequest) -> HttpResponse:
    """`/console/`: the first (or only) tenant's console."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    tenants = list(_staff_tenants(request))
    if not tenants:
        return HttpResponse("You are not a staff member of any tenant.", status=403)
    wanted = request.GET.get("tenant")
    tenant = next((t for t in tenants if t.slug == wanted), tenants[0])
    return redirect("workspace:console", slug=tenant.slug)


@ensure_csrf_cookie  # the buttons POST with the token from the cookie
@console_view
def console_page(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    queue = [
        selectors.conversation_card(c)
        for c in selectors.console_queue(user=request.user, tenant=tenant)
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Agent console · {tenant.name}",
        "tenant": tenant,
        "tenants": _staff_tenants(request),
        "queue": queue,
        "console_config": {
            "tenant": tenant.slug,
            "user_id": request.user.pk,
            "queue": queue,
        },
    }
    return TemplateResponse(request, "workspace/console.html", context)


# --- JSON endpoints ---------------------------------------------------------------------------


@require_GET
@console_view
def queue_json(request: HttpRequest, tenant: Tenant) -> JsonResponse:
    cards = [
        selectors.conversation_card(c)
        for c in selectors.console_queue(user=request.user, tenant=tenant)
    ]
    return JsonResponse({"conversations": cards})


@require_GET
@console_view
def conversation_json(request: HttpRequest, tenant: Tenant, conversation_id: str) -> JsonResponse:
    return JsonResponse(_conversation_json(_conversation(request, tenant, conversation_id)))


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise ApplicationError("The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise ApplicationError("The body must be a JSON object.")
    return data


@require_POST
@console_view
def reply(request: HttpRequest, tenant: Tenant, conversation_id: str) -> JsonResponse:
    conversation = _conversation(request, tenant, conversation_id)
    content = _body(request).get("content")
    if not isinstance(content, str) or not content.strip():
        raise ApplicationError("The reply is empty.")
    if len(content) > MAX_REPLY_CHARS:
        raise ApplicationError(f"A reply has at most {MAX_REPLY_CHARS} characters.")
    message = services.agent_reply(conversation=conversation, agent=request.user, content=content)
    return JsonResponse({"message": selectors.message_console_wire(message)}, status=201)


def _conversation_action(service: Any) -> Any:
    """A POST that runs `service(conversation=, agent=)` and answers with the conversation."""

    @require_POST
    @console_view
    def view(request: HttpRequest, tenant: Tenant, conversation_id: str) -> JsonResponse:
        conversation = _conversation(request, tenant, conversation_id)
        return JsonResponse(
            _conversation_json(service(conversation=conversation, agent=request.user))
        )

    return view


take_over = _conversation_action(services.conversation_take_over)
hand_back = _conversation_action(services.conversation_hand_back)
resolve = _conversation_action(services.conversation_close)


@require_POST
@console_view
def suggest(request: HttpRequest, tenant: Tenant, conversation_id: str) -> JsonResponse:
    conversation = _conversation(request, tenant, conversation_id)
    draft = async_to_sync(suggestions.draft_reply)(conversation=conversation)
    return JsonResponse(draft)
