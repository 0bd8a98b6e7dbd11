"""Invitations: an existing account joins another tenant only when its holder accepts.

Services on PostgreSQL; the accept page through Django's test client; the admin's add form
sends the email through a real SMTP server on loopback (tests/support/smtp.py).
"""

from __future__ import annotations

import re
import socket
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import ApplicationError, NotFoundError, PermissionDeniedError
from apps.tenants import invitations
from apps.tenants.models import Invitation, Membership, Role

pytestmark = pytest.mark.django_db


def invite(world, user, role=Role.AGENT):
    return invitations.invitation_create(
        tenant=world.tenant, email=user.email, role=role, by=world.owner
    )


def role_of(world, user) -> str | None:
    membership = Membership.objects.for_tenant(world.tenant).filter(user=user).first()
    return membership.role if membership else None


# --- Services ---------------------------------------------------------------------------------


def test_the_token_is_never_stored(tenant_a, tenant_b):
    invitation, token = invite(tenant_a, tenant_b.agent)
    assert len(token) >= 40 and token not in invitation.token_digest
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_invitation")
        rows = cursor.fetchall()
    assert rows and all(token not in str(value) for row in rows for value in row)
    assert invitations.invitation_link(token).endswith(f"/invitations/{token}/")


def test_the_invited_account_joins_with_the_role_once(tenant_a, tenant_b):
    person = tenant_b.agent  # an account that already exists, in another tenant
    _, token = invite(tenant_a, person, role=Role.ADMIN)
    assert role_of(tenant_a, person) is None  # nothing changes before they accept

    membership = invitations.invitation_accept(token=token, user=person)
    assert membership.tenant == tenant_a.tenant and membership.role == Role.ADMIN
    assert role_of(tenant_b, person) == Role.AGENT  # their other tenant is untouched
    invitation = Invitation.objects.for_tenant(tenant_a.tenant).get()
    assert invitation.accepted_by == person and invitation.accepted_at is not None
    with pytest.raises(ApplicationError, match="already accepted") as used:
        invitations.invitation_accept(token=token, user=person)
    assert used.value.status_code == 410


def test_only_the_invited_address_may_accept(tenant_a, tenant_b):
    _, token = invite(tenant_a, tenant_b.agent)
    with pytest.raises(PermissionDeniedError, match=re.escape(f"sent to {tenant_b.agent.email}")):
        invitations.invitation_accept(token=token, user=tenant_b.admin)
    assert role_of(tenant_a, tenant_b.admin) is None
    assert Invitation.objects.for_tenant(tenant_a.tenant).get().accepted_at is None


def test_expired_revoked_and_made_up_links_are_refused(tenant_a, tenant_b):
    invitation, token = invite(tenant_a, tenant_b.agent)
    Invitation.objects.for_tenant(tenant_a.tenant).filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(ApplicationError, match="expired") as expired:
        invitations.invitation_accept(token=token, user=tenant_b.agent)
    assert expired.value.status_code == 410

    invitation, token = invite(tenant_a, tenant_b.agent)  # a new link replaces the old one
    assert Invitation.objects.for_tenant(tenant_a.tenant).count() == 1
    invitation.delete()  # revoked
    for bad in (token, "x" * 43, "short", "../../etc"):
        with pytest.raises(NotFoundError):
            invitations.invitation_accept(token=bad, user=tenant_b.agent)
    assert role_of(tenant_a, tenant_b.agent) is None


def test_a_member_is_not_invited_and_a_higher_role_is_kept(tenant_a, tenant_b):
    with pytest.raises(ApplicationError, match="already a member"):
        invite(tenant_a, tenant_a.agent)
    _, token = invite(tenant_a, tenant_b.owner, role=Role.AGENT)
    # An operator made them an owner before they opened the link: accepting does not demote.
    Membership.objects.create(tenant=tenant_a.tenant, user=tenant_b.owner, role=Role.OWNER)
    invitations.invitation_accept(token=token, user=tenant_b.owner)
    assert role_of(tenant_a, tenant_b.owner) == Role.OWNER
    assert Invitation.objects.for_tenant(tenant_a.tenant).get().accepted_at is not None


# --- The accept page ------------------------------------------------------------------------------


def test_signed_out_visitors_sign_in_first(client, tenant_a, tenant_b):
    _, token = invite(tenant_a, tenant_b.agent)
    url = reverse("invitation", args=[token])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert token in response["Location"]  # back to the link after signing in
    assert client.post(url).status_code == 302
    assert role_of(tenant_a, tenant_b.agent) is None


def test_the_invited_account_accepts_on_the_page(client, tenant_a, tenant_b):
    _, token = invite(tenant_a, tenant_b.agent, role=Role.ADMIN)
    url = reverse("invitation", args=[token])
    client.force_login(tenant_b.agent)
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Join Acme Anvils" in body and "as <strong>admin</strong>" in body
    assert 'data-testid="accept"' in body
    assert role_of(tenant_a, tenant_b.agent) is None  # looking changes nothing

    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert role_of(tenant_a, tenant_b.agent) == Role.ADMIN
    again = client.get(url)
    assert again.status_code == 410 and "already accepted" in again.content.decode()


def test_another_account_sees_why_and_cannot_accept(client, tenant_a, tenant_b):
    _, token = invite(tenant_a, tenant_b.agent)
    url = reverse("invitation", args=[token])
    client.force_login(tenant_b.admin)
    page = client.get(url)
    assert page.status_code == 403
    assert "sign in with the invited account" in page.content.decode().lower()
    assert 'data-testid="accept"' not in page.content.decode()
    assert client.post(url).status_code == 403
    assert role_of(tenant_a, tenant_b.admin) is None
    assert client.get(reverse("invitation", args=["y" * 43])).status_code == 404


# --- The admin ------------------------------------------------------------------------------------


def add_invitation(client, world, email, role=Role.AGENT):
    return client.post(
        reverse("admin:tenants_invitation_add"),
        {"tenant": world.tenant.pk, "email": email, "role": role},
        follow=True,
    )


def test_owner_invites_an_existing_account_by_email(client, tenant_a, tenant_b, smtp_server):
    client.force_login(tenant_a.owner)
    response = add_invitation(client, tenant_a, tenant_b.agent.email)
    assert response.status_code == 200
    assert f"Invitation emailed to {tenant_b.agent.email}" in response.content.decode()
    [mail] = smtp_server.received
    assert mail["to"] == [tenant_b.agent.email]
    [link] = re.findall(r"https://support\.acme\.example/invitations/([\w-]+)/", mail["data"])
    invitation = Invitation.objects.for_tenant(tenant_a.tenant).get()
    assert invitation.invited_by == tenant_a.owner and invitation.role == Role.AGENT
    # The link in the email is the one that works.
    invitations.invitation_accept(token=link, user=tenant_b.agent)
    assert role_of(tenant_a, tenant_b.agent) == Role.AGENT


def test_the_link_is_shown_once_when_the_email_cannot_be_sent(client, tenant_a, tenant_b, settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    client.force_login(tenant_a.owner)
    body = add_invitation(client, tenant_a, tenant_b.agent.email).content.decode()
    assert "could not be sent" in body
    [token] = re.findall(r"/invitations/([\w-]+)/", body)
    assert Invitation.objects.for_tenant(tenant_a.tenant).count() == 1
    invitations.invitation_accept(token=token, user=tenant_b.agent)
    assert role_of(tenant_a, tenant_b.agent) == Role.AGENT


def test_only_owners_invite_and_only_to_their_tenants(client, tenant_a, tenant_b, smtp_server):
    for who in (tenant_a.admin, tenant_a.agent):
        client.force_login(who)
        assert client.get(reverse("admin:tenants_invitation_add")).status_code == 403
        add_invitation(client, tenant_a, "someone@example.com")
    client.force_login(tenant_b.owner)
    response = add_invitation(client, tenant_a, "intruder@example.com", role=Role.OWNER)
    assert "Select a valid choice" in response.content.decode()
    assert Invitation.objects.unscoped().count() == 0 and smtp_server.received == []
    # Admins see their tenant's invitations; nobody edits one (revoke = delete).
    invite(tenant_a, tenant_b.agent)
    client.force_login(tenant_a.admin)
    listing = client.get(reverse("admin:tenants_invitation_changelist")).content.decode()
    assert tenant_b.agent.email in listing and "pending" in listing
    client.force_login(tenant_b.owner)
    listing = client.get(reverse("admin:tenants_invitation_changelist")).content.decode()
    assert tenant_b.agent.email not in listing


def test_adding_an_existing_account_as_member_points_to_invitations(client, tenant_a, tenant_b):
    client.force_login(tenant_a.owner)
    response = client.post(
        reverse("admin:tenants_membership_add"),
        {"tenant": tenant_a.tenant.pk, "email": tenant_b.agent.email, "role": Role.AGENT},
    )
    assert response.status_code == 200
    assert "send them an invitation" in response.content.decode()
    assert role_of(tenant_a, tenant_b.agent) is None
