"""Writes for tenants, memberships and widget keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.tenants.models import Membership, Role, Tenant, WidgetKey

# What apps above this one set up for every new tenant (the workspace's default inbox). They
# register from their AppConfig.ready(), so tenants imports none of them.
TenantSetup = Callable[..., Any]
_setups: list[TenantSetup] = []


def tenant_setup_register(setup: TenantSetup) -> TenantSetup:
    """Run `setup(tenant=...)` for every tenant created from now on (once per function)."""
    if setup not in _setups:
        _setups.append(setup)
    return setup


def tenant_setup(*, tenant: Tenant) -> None:
    """What a new tenant needs from other apps; `tenant_create` and the admin's add call it."""
    for setup in _setups:
        setup(tenant=tenant)


@transaction.atomic
def tenant_create(
    *, name: str, slug: str, allowed_origins: list[str] | None = None, owner: Any = None
) -> Tenant:
    tenant = Tenant(name=name, slug=slug, allowed_origins=allowed_origins or [])
    try:
        tenant.full_clean()
    except ValidationError as exc:
        raise ApplicationError("The tenant is not valid.", extra=exc.message_dict) from exc
    tenant.save()
    WidgetKey.objects.create(tenant=tenant, name="Website")
    tenant_setup(tenant=tenant)
    if owner is not None:
        membership_set(tenant=tenant, user=owner, role=Role.OWNER)
    return tenant


def membership_set(*, tenant: Tenant, user: Any, role: Role | str) -> Membership:
    """Make `user` a member of `tenant` with `role` (creating or changing the membership)."""
    role = Role(role)
    membership, _ = Membership.objects.update_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    if not user.is_staff:
        # Members sign in to the admin; what they see there is limited by tenant and role.
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership


def membership_invite_check(*, tenant: Tenant, email: str, by: Any = None) -> None:
    """Refuse to attach an existing account to `tenant` without its holder's consent.

    An owner creates new accounts by email and changes the roles of their own members, but an
    account that already exists (someone of another tenant, or anybody who signed up) is not
    made a member behind its holder's back: a superuser adds it. `by=None` is the installation's
    operator (management commands).
    """
    if by is None or getattr(by, "is_superuser", False):
        return
    user = get_user_model().objects.filter(email__iexact=(email or "").strip()).first()
    if user is None or Membership.objects.for_tenant(tenant).filter(user=user).exists():
        return
    raise ApplicationError(
        "This email already has an account, which only its holder can agree to join another "
        "tenant with: send them an invitation (Invitations) instead.",
        extra={"email": email},
        code="existing_account",
    )


@transaction.atomic
def membership_invite(
    *,
    tenant: Tenant,
    email: str,
    role: Role | str,
    name: str = "",
    password: str | None = None,
    by: Any = None,
) -> Membership:
    """Add a person by email, creating their account when there is none yet.

    `by` is who adds them (see `membership_invite_check`: existing accounts need consent).
    """
    user_model = get_user_model()
    email = user_model.objects.normalize_email(email).lower()
    if not email or "@" not in email:
        raise ApplicationError("An email address is required.", extra={"email": email})
    membership_invite_check(tenant=tenant, email=email, by=by)
    user = user_model.objects.filter(email__iexact=email).first()
    if user is None:
        user = user_model(username=email, email=email, display_name=name)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    return membership_set(tenant=tenant, user=user, role=role)


def membership_remove(*, tenant: Tenant, user: Any) -> None:
    with transaction.atomic():
        membership = Membership.objects.for_tenant(tenant).select_for_update().get(user=user)
        if membership.role == Role.OWNER:
            owners = Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).count()
            if owners <= 1:
                raise ApplicationError("A tenant keeps at least one owner.")
        membership.delete()


# --- End-user tokens ------------------------------------------------------------------------------
# A tenant's own backend signs who the logged-in customer is; the widget passes the token along.
# Format: base64url(json payload) + "." + base64url(HMAC-SHA256(secret, payload part)).


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def end_user_token_sign(
    *, tenant: Tenant, external_id: str, groups: list[str] | None = None, ttl: int = 3600, **claims
) -> str:
    payload = {"sub": external_id, "groups": groups or [], "exp": int(time.time()) + ttl, **claims}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signature = hmac.new(tenant.end_user_secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def end_user_token_verify(*, tenant: Tenant, token: str) -> dict[str, Any]:
    """The token's claims, or ApplicationError when it is forged, malformed or expired."""
    if not tenant.end_user_secret:
        # Sealed under a SECRET_KEY this server no longer has: an empty HMAC key would let
        # anyone sign, so no token is valid until the secret is set again.
        raise ApplicationError("End-user tokens cannot be checked now.", code="invalid_token")
    try:
        body, signature = token.split(".", 1)
        expected = hmac.new(tenant.end_user_secret.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise ValueError("signature")
        claims = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise ApplicationError("The end-user token is not valid.", code="invalid_token") from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
        raise ApplicationError("The end-user token has no subject.", code="invalid_token")
    if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
        raise ApplicationError("The end-user token has expired.", code="invalid_token")
    groups = claims.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ApplicationError("The end-user token's groups must be strings.", code="invalid_token")
    return claims
