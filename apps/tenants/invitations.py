"""Invitations: how a person whose account already exists joins another tenant with consent.

An owner invites an email address with a role; the address gets a link with a one-time token
(only its SHA-256 digest is stored). The holder signs in as that address and accepts; only then
do they become a member. New addresses can be invited the same way (an account is created
when they are added directly, see ``services.membership_invite``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, NotFoundError, PermissionDeniedError
from apps.tenants.models import ROLE_RANK, Invitation, Membership, Role, Tenant
from apps.tenants.services import membership_set

logger = logging.getLogger(__name__)

MAX_AGE = timedelta(days=7)
TOKEN_BYTES = 32


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_link(token: str) -> str:
    return f"{settings.PUBLIC_URL.rstrip('/')}/invitations/{token}/"


def _gone(message: str) -> ApplicationError:
    return ApplicationError(message, code="gone", status_code=410)


def invitation_check(*, tenant: Tenant, email: str) -> None:
    """Refuse to invite someone who is already a member (the admin's form asks it first)."""
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise ApplicationError(
            f"{email} is already a member of {tenant.name}.", code="already_member"
        )


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, email: str, role: Role | str, by: Any = None
) -> tuple[Invitation, str]:
    """Invite `email` to `tenant` with `role`; returns the invitation and its token (the only
    copy: put it in the link, never store it). A pending invitation of the same address to the
    same tenant is replaced, so only the newest link works."""
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        raise ApplicationError("An email address is required.", extra={"email": email})
    role = Role(role)
    invitation_check(tenant=tenant, email=email)
    Invitation.objects.for_tenant(tenant).filter(
        email__iexact=email, accepted_at__isnull=True
    ).delete()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_digest=_digest(token),
        invited_by=by if getattr(by, "pk", None) else None,
        expires_at=timezone.now() + MAX_AGE,
    )
    return invitation, token


def invitation_send(*, invitation: Invitation, token: str) -> bool:
    """Email the link; False (logged) when the mail server refused or was unreachable, so the
    caller can hand the link over another way. The invitation stays valid either way."""
    tenant = invitation.tenant
    inviter = getattr(invitation.invited_by, "email", "") or "An owner"
    body = (
        f"{inviter} invited you to join {tenant.name} on SupportAI as "
        f"{invitation.get_role_display().lower()}.\n\n"
        f"Sign in as {invitation.email} and accept here:\n{invitation_link(token)}\n\n"
        f"The link works once and expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
        "If you did not expect it, ignore this email: nothing changes until you accept.\n"
    )
    try:
        send_mail(
            subject=f"[{tenant.name}] You are invited to join",
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[invitation.email],
            fail_silently=False,
        )
    except Exception:
        logger.warning("invitation email to %s failed", invitation.email, exc_info=True)
        return False
    return True


def invitation_for_token(*, token: str) -> Invitation:
    """The pending invitation of a link, or a readable error: unknown, used or expired."""
    if not isinstance(token, str) or not 16 <= len(token) <= 100:
        raise NotFoundError("This invitation link is not valid.")
    invitation = (
        Invitation.objects.unscoped()
        .select_related("tenant", "invited_by")
        .filter(token_digest=_digest(token))
        .first()
    )
    if invitation is None:
        raise NotFoundError("This invitation link is not valid (it may have been revoked).")
    if invitation.accepted_at is not None:
        raise _gone("This invitation was already accepted.")
    if invitation.expires_at <= timezone.now():
        raise _gone("This invitation has expired; ask the owner for a new one.")
    if not invitation.tenant.is_active:
        raise NotFoundError("This invitation link is not valid.")
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: Any) -> Membership:
    """`user` (signed in) accepts the invitation of `token`: they become a member with its
    role, or keep a higher role they already have. Only the account the invitation was sent to
    may accept, and only once."""
    found = invitation_for_token(token=token)
    invitation = Invitation.objects.unscoped().select_for_update().get(pk=found.pk)
    if invitation.accepted_at is not None:  # accepted in the meantime
        raise _gone("This invitation was already accepted.")
    if not invitation.is_for(user):
        raise PermissionDeniedError(
            f"This invitation was sent to {invitation.email}; sign in with that account to "
            "accept it."
        )
    tenant = found.tenant
    current = Membership.objects.for_tenant(tenant).filter(user=user).first()
    if current is not None and ROLE_RANK[Role(current.role)] >= ROLE_RANK[Role(invitation.role)]:
        membership = current
    else:
        membership = membership_set(tenant=tenant, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    logger.info("invitation %s to %s accepted", invitation.pk, tenant.slug)
    return membership
