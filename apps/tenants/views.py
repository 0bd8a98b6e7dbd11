"""The page where an invited person accepts an invitation (apps/tenants/invitations.py)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.core.errors import ApplicationError
from apps.tenants.invitations import invitation_accept, invitation_for_token

TEMPLATE = "tenants/invitation.html"


def _page(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    # The admin's frame (styles, header), as the admin's own pages have it.
    context = {**admin.site.each_context(request), "title": "Invitation", **context}
    return render(request, TEMPLATE, context, status=status)


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows what accepting means; POST accepts. Signed-out visitors sign in first (the
    token stays in the `next` address); an invitation for another email is refused."""
    try:
        pending = invitation_for_token(token=token)
    except ApplicationError as exc:
        return _page(request, {"error": exc.message}, exc.status_code)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    wrong_account = not pending.is_for(request.user)
    if request.method == "POST" and not wrong_account:
        try:
            membership = invitation_accept(token=token, user=request.user)
        except ApplicationError as exc:
            return _page(request, {"error": exc.message}, exc.status_code)
        messages.success(
            request,
            f"You joined {membership.tenant.name} as {membership.get_role_display().lower()}.",
        )
        return redirect("admin:index")
    context = {"invitation": pending, "wrong_account": wrong_account}
    return _page(request, context, 403 if wrong_account else 200)
