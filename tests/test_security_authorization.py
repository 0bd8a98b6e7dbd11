"""Authorization inside a tenant: the REST API honours inbox grants (issue #11, hole 1).

The table runs every conversation, message and contact endpoint as the tenant's owner, an
admin, an agent granted the conversation's inbox, an agent with no grant and another tenant's
API key. People and keys outside what they may work get the same answers as for a conversation
that does not exist (404, or an empty list), and nothing they send changes anything.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.conversations import feedback
from apps.conversations import services as chat
from apps.conversations.models import Contact, Conversation, ConversationStatus, Message
from apps.tenants.models import Role
from apps.tenants.services import membership_set
from apps.tenants.tests.factories import UserFactory
from apps.workspace import services as workspace
from tests.support.api import assert_error

pytestmark = pytest.mark.usefixtures("fresh_cache")

API = "/api/v1"
OWNER, ADMIN, GRANTED, NO_GRANT, OTHER_TENANT = (
    "owner",
    "admin",
    "agent_with_grant",
    "agent_without_grant",
    "other_tenant_key",
)
ROLES = [OWNER, ADMIN, GRANTED, NO_GRANT, OTHER_TENANT]


@pytest.fixture
def world(tenant_a, tenant_b):
    """Tenant A: a conversation routed to inbox "Billing" (one agent granted), with a contact."""
    tenant = tenant_a.tenant
    granted = UserFactory(username="acme-billing-agent")
    membership_set(tenant=tenant, user=granted, role=Role.AGENT)
    billing = workspace.inbox_create(tenant=tenant, name="Billing")
    workspace.inbox_grant(inbox=billing, agent=granted)
    contact = Contact.objects.create(
        tenant=tenant, external_id="crm-7", email="ada@customer.example", name="Ada"
    )
    conversation = chat.conversation_start(tenant=tenant, contact=contact)
    chat.message_post_customer(conversation=conversation, text="My invoice is wrong.")
    workspace.conversation_route(conversation=conversation, inbox=billing)
    return {
        "tenant_a": tenant_a,
        "tenant_b": tenant_b,
        "granted": granted,
        "contact": contact,
        "conversation": conversation,
    }


def _client(world, role: str, api_key_for) -> tuple[APIClient, str]:
    """(client, query string naming the tenant) for one row of the table."""
    if role == OTHER_TENANT:
        return api_key_for(world["tenant_b"].tenant, scopes=["admin"]), ""
    user = {
        OWNER: world["tenant_a"].owner,
        ADMIN: world["tenant_a"].admin,
        GRANTED: world["granted"],
        NO_GRANT: world["tenant_a"].agent,
    }[role]
    client = APIClient()
    client.force_login(user)
    return client, "?tenant=acme"


def _unchanged(world) -> None:
    tenant = world["tenant_a"].tenant
    conversation = Conversation.objects.for_tenant(tenant).get(pk=world["conversation"].pk)
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.assigned_agent is None
    assert Message.objects.for_tenant(tenant).filter(conversation=conversation).count() == 1
    contact = Contact.objects.for_tenant(tenant).get(pk=world["contact"].pk)
    assert (contact.name, contact.email) == ("Ada", "ada@customer.example")


# (method, url template, body, expected status per role). "c" is the conversation's public id,
# "p" the contact's; `None` in the expectations means "refused as if absent" (404).
ALLOWED_READ = {OWNER: 200, ADMIN: 200, GRANTED: 200, NO_GRANT: None, OTHER_TENANT: None}
ALLOWED_WRITE_BY_ADMINS = {OWNER: 2, ADMIN: 2, GRANTED: 403, NO_GRANT: 403, OTHER_TENANT: None}
DETAIL_TABLE = [
    ("get", "/conversations/{c}/", None, ALLOWED_READ),
    ("get", "/conversations/{c}/messages/", None, ALLOWED_READ),
    (
        "post",
        "/conversations/{c}/messages/",
        {"content": "We are on it."},
        {OWNER: 201, ADMIN: 201, GRANTED: 201, NO_GRANT: None, OTHER_TENANT: None},
    ),
    (
        "patch",
        "/conversations/{c}/",
        {"status": "resolved"},
        {OWNER: 200, ADMIN: 200, GRANTED: 200, NO_GRANT: None, OTHER_TENANT: None},
    ),
    (
        "post",
        "/conversations/{c}/resolve/",
        None,
        {OWNER: 200, ADMIN: 200, GRANTED: 200, NO_GRANT: None, OTHER_TENANT: None},
    ),
    (
        "post",
        "/conversations/{c}/assign/",
        {"agent": "SELF"},
        {OWNER: 200, ADMIN: 200, GRANTED: 200, NO_GRANT: None, OTHER_TENANT: None},
    ),
    ("get", "/contacts/{p}/", None, ALLOWED_READ),
    ("get", "/contacts/by-external-id/crm-7/", None, ALLOWED_READ),
    ("get", "/contacts/{p}/conversations/", None, ALLOWED_READ),
    ("patch", "/contacts/{p}/", {"name": "Changed"}, {**ALLOWED_WRITE_BY_ADMINS, NO_GRANT: 403}),
    ("delete", "/contacts/{p}/", None, ALLOWED_WRITE_BY_ADMINS),
    # Another tenant's key creates its own contact with that external id; A's is untouched.
    (
        "put",
        "/contacts/by-external-id/crm-7/",
        {"name": "Changed"},
        {**ALLOWED_WRITE_BY_ADMINS, OTHER_TENANT: 201},
    ),
]


def _fill(template: str, world) -> str:
    return API + template.format(c=world["conversation"].public_id, p=world["contact"].public_id)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "template", "body", "expected"),
    DETAIL_TABLE,
    ids=[f"{m} {t}" for m, t, _, _ in DETAIL_TABLE],
)
def test_detail_endpoint_by_role(world, api_key_for, role, method, template, body, expected):
    client, query = _client(world, role, api_key_for)
    if body and body.get("agent") == "SELF":
        # Assign to someone who may work the conversation: the granted agent.
        body = {"agent": world["granted"].pk}
    response = getattr(client, method)(_fill(template, world) + query, body, format="json")
    want = expected[role]
    if want is None:
        assert_error(response, 404)
        _unchanged(world)
    elif want == 2:
        assert 200 <= response.status_code < 300, (role, response.status_code, response.content)
    elif want >= 400:
        assert_error(response, want)
        _unchanged(world)
    else:
        assert response.status_code == want, (role, response.status_code, response.content)
        if role == OTHER_TENANT:
            _unchanged(world)


LIST_TABLE = [
    ("/conversations/", lambda w: str(w["conversation"].public_id)),
    ("/contacts/", lambda w: str(w["contact"].public_id)),
    ("/feedback/", lambda w: str(w["conversation"].public_id)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("template", "wanted_id"), LIST_TABLE, ids=[t for t, _ in LIST_TABLE])
def test_list_endpoint_by_role(world, api_key_for, role, template, wanted_id):
    feedback.feedback_record(conversation=world["conversation"], kind="csat", rating=2)
    client, query = _client(world, role, api_key_for)
    response = client.get(API + template + query)
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    if template == "/feedback/":
        seen = {r["conversation_id"] for r in results}
    else:
        seen = {r["id"] for r in results}
    if role in (OWNER, ADMIN, GRANTED):
        assert wanted_id(world) in seen
    else:
        assert seen == set(), (role, results)
        assert "ada@customer.example" not in response.content.decode()


@pytest.mark.parametrize("role", [NO_GRANT, OTHER_TENANT])
@pytest.mark.parametrize(
    "body",
    [
        lambda w: (
            "/feedback/",
            {"conversation_id": str(w["conversation"].public_id), "rating": 1},
        ),
        lambda w: (
            "/ask/",
            {"question": "Why?", "conversation_id": str(w["conversation"].public_id)},
        ),
    ],
    ids=["feedback", "ask"],
)
def test_naming_a_conversation_in_the_body_without_a_grant_is_404(world, api_key_for, role, body):
    client, query = _client(world, role, api_key_for)
    template, payload = body(world)
    assert_error(client.post(API + template + query, payload, format="json"), 404)
    _unchanged(world)


def test_agent_cannot_reply_in_someone_elses_name(world, api_key_for):
    client, query = _client(world, GRANTED, api_key_for)
    owner = world["tenant_a"].owner
    url = _fill("/conversations/{c}/messages/", world) + query
    assert_error(client.post(url, {"content": "Refund approved.", "agent": owner.pk}), 403)
    _unchanged(world)


def test_conversation_cannot_be_assigned_to_an_agent_without_its_inbox(world, api_key_for):
    client = api_key_for(world["tenant_a"].tenant, scopes=["conversations:write"])
    url = _fill("/conversations/{c}/assign/", world)
    response = client.post(url, {"agent": world["tenant_a"].agent.pk}, format="json")
    assert_error(response, 400)
    _unchanged(world)


def test_api_key_reply_must_name_an_agent_who_may_work_the_conversation(world, api_key_for):
    client = api_key_for(world["tenant_a"].tenant, scopes=["conversations:write"])
    url = _fill("/conversations/{c}/messages/", world)
    body = {"content": "Hi", "agent": world["tenant_a"].agent.pk}
    assert_error(client.post(url, body, format="json"), 400)
    _unchanged(world)
    body = {"content": "Hi", "agent": world["granted"].pk}
    assert client.post(url, body, format="json").status_code == 201
