"""Helpers for tests of the REST API (`/api/v1/`): the one error body, and one object of every
resource in a tenant for isolation, scope and dead-key checks.

`resources_a` (a fixture in `tests/support/fixtures.py`) is `resource_objects(tenant_a, "acme")`.
"""

from __future__ import annotations

from typing import Any

from apps.conversations import feedback as chat_feedback
from apps.conversations import services as chat
from apps.conversations.models import (
    Contact,
    Conversation,
    ConversationStatus,
    Feedback,
    Message,
    MessageRole,
)
from apps.knowledge.models import Document, Source
from apps.knowledge.services import source_create
from apps.workspace.selectors import inbox_default
from apps.workspace.services import inbox_grant

API = "/api/v1"
RETURNS = (
    "# Returns\n\nYou can return any anvil within 30 days of delivery for a full refund. "
    "Start a return from Orders, then Return item; we email a prepaid shipping label."
)


def assert_error(response: Any, status: int, code: str | None = None) -> dict:
    """The response has `status` and the API's one error body (with `code`, if given)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


def resource_objects(world: Any, tag: str) -> dict[str, Any]:
    """One contact, conversation (question, answer, CSAT), text source and document in `world`."""
    tenant = world.tenant
    # The agent works the default inbox, so the API lets them (and integrations naming them)
    # see and answer its conversations (tests/test_security_authorization.py has the rest).
    inbox_grant(inbox=inbox_default(tenant=tenant), agent=world.agent)
    contact = Contact.objects.create(
        tenant=tenant, external_id=f"crm-{tag}", email=f"{tag}@example.com", name=tag.title()
    )
    conversation = chat.conversation_start(tenant=tenant, contact=contact)
    question, _ = chat.message_post_customer(conversation=conversation, text="Where is my anvil?")
    answer = chat.assistant_message_start(conversation=conversation)
    answer = chat.assistant_message_finish(
        message=answer, content="It ships tomorrow.", status="complete", decision="answer"
    )
    feedback = chat_feedback.feedback_record(conversation=conversation, kind="csat", rating=4)
    source = source_create(
        tenant=tenant, kind=Source.Kind.TEXT, name=f"{tag} text", text=RETURNS, sync=False
    )
    document = Document.objects.create(tenant=tenant, source=source, key="text", title="Returns")
    return {
        "contact": contact,
        "conversation": conversation,
        "question": question,
        "answer": answer,
        "feedback": feedback,
        "source": source,
        "document": document,
    }


def api_url(template: str, obj: Any) -> str:
    """`template` (`/contacts/{id}/`) under /api/v1 for `obj` (its public id, its external id)."""
    return API + template.format(id=obj.public_id, external_id=getattr(obj, "external_id", ""))


def assert_unchanged(world: Any, objects: dict[str, Any]) -> None:
    """The objects of `resource_objects(world, "acme")` are as they were made."""
    tenant = world.tenant
    conversation = Conversation.objects.for_tenant(tenant).get(pk=objects["conversation"].pk)
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.assigned_agent is None
    assert Message.objects.for_tenant(tenant).filter(role=MessageRole.AGENT).count() == 0
    assert Contact.objects.for_tenant(tenant).get(pk=objects["contact"].pk).name == "Acme"
    assert Source.objects.for_tenant(tenant).filter(pk=objects["source"].pk).exists()
    assert Source.objects.for_tenant(tenant).get(pk=objects["source"].pk).status == "idle"
    assert Document.objects.for_tenant(tenant).filter(pk=objects["document"].pk).exists()
    assert Feedback.objects.for_tenant(tenant).get().rating == "4"


def create_subscription(
    client: Any, key: str, url: str = "http://127.0.0.1:9/hook", **extra: Any
) -> Any:
    """POST a webhook subscription to every event with the idempotency key `key`."""
    return client.post(
        f"{API}/webhooks/subscriptions/",
        {"url": url, "event_types": ["*"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
        **extra,
    )
