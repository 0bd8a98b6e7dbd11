"""An owner invites someone who already has an account, and they accept: real Chromium against
a live uvicorn, the email through a real SMTP server on loopback.

The owner fills the admin's invitation form; the invitation arrives by email; the invited
person, signed out, opens the link, signs in through the admin's sign-in page, lands back on
the invitation and accepts, and is then a member with the invited role.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from apps.tenants.models import Membership, Role
from apps.tenants.services import membership_set, tenant_create
from apps.tenants.tests.factories import UserFactory
from tests.support.browser import CHROMIUM_ARGS, chromium_path, session_for
from tests.support.smtp import SmtpServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "pw-correct-horse-battery"  # UserFactory's


@pytest.fixture
def mail():
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(monkeypatch, request, mail):
    host, port = mail.address
    monkeypatch.setenv("EMAIL_URL", f"smtp://{host}:{port}")
    return request.getfixturevalue("live_server_process")


def test_an_existing_account_accepts_an_invitation_in_the_browser(server, mail, settings):
    from playwright.sync_api import expect, sync_playwright

    # The live server checks passwords with the installation's hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]

    acme = tenant_create(name="Acme Anvils", slug="acme", allowed_origins=[server.url])
    owner = UserFactory(username="acme-owner")
    membership_set(tenant=acme, user=owner, role=Role.OWNER)
    other = tenant_create(name="Bluebird Bikes", slug="bluebird")
    person = UserFactory(username="bluebird-agent")  # has an account, in another tenant
    membership_set(tenant=other, user=person, role=Role.AGENT)
    owner_session = session_for(owner)  # the ORM before Playwright's event loop starts
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            owner_context = browser.new_context(locale="en-US")
            owner_context.add_cookies(
                [{"name": "sessionid", "value": owner_session, "url": server.url}]
            )
            admin = owner_context.new_page()
            admin.goto(f"{server.url}/admin/tenants/invitation/add/")
            admin.locator('select[name="tenant"]').select_option(str(acme.pk))
            admin.locator('input[name="email"]').fill(person.email)
            admin.locator('select[name="role"]').select_option(Role.ADMIN)
            admin.locator('[name="_save"]').first.click()
            expect(admin.get_by_text(f"Invitation emailed to {person.email}")).to_be_visible()

            [message] = mail.received
            assert message["to"] == [person.email]
            [path] = re.findall(r"/invitations/[\w-]+/", message["data"])

            # The invited person, signed out, follows the link.
            guest = browser.new_context(locale="en-US").new_page()
            guest.goto(f"{server.url}{path}")
            expect(guest).to_have_url(re.compile(r"/admin/login/\?next="))
            guest.locator('input[name="username"]').fill(person.username)
            guest.locator('input[name="password"]').fill(PASSWORD)
            guest.locator('input[type="submit"], button[type="submit"]').first.click()
            expect(guest).to_have_url(f"{server.url}{path}")
            expect(guest.get_by_role("heading", name="Join Acme Anvils")).to_be_visible()
            guest.screenshot(path=ARTIFACTS / "invitation-1-accept.png")
            guest.locator('[data-testid="accept"]').click()
            expect(guest).to_have_url(f"{server.url}/admin/")
            expect(guest.get_by_text("You joined Acme Anvils as admin.")).to_be_visible()
            guest.screenshot(path=ARTIFACTS / "invitation-2-joined.png")
        finally:
            browser.close()

    membership = Membership.objects.for_tenant(acme).get(user=person)
    assert membership.role == Role.ADMIN
    assert Membership.objects.for_tenant(other).get(user=person).role == Role.AGENT
