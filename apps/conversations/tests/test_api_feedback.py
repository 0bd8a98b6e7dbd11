"""The feedback API: thumbs on an answer and CSAT on a conversation.
Isolation, scopes and dead keys for every endpoint: tests/test_api_isolation.py.
"""

from __future__ import annotations

import pytest

from apps.conversations.models import Feedback
from apps.events.models import Event, EventType
from tests.support.api import API, assert_error
from tests.support.knowledge import knowledge_store  # noqa: F401

pytestmark = pytest.mark.usefixtures("fresh_cache", "knowledge_store")


def test_feedback_thumbs_and_csat(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write", "conversations:read"])
    conversation_id = str(resources_a["conversation"].public_id)
    body = {"conversation_id": conversation_id, "message_id": resources_a["answer"].pk}
    response = client.post(f"{API}/feedback/", {**body, "rating": "up"}, format="json")
    assert response.status_code == 201, response.content
    assert (
        response.json()["kind"] == "thumbs" and response.json()["message_id"] == body["message_id"]
    )
    response = client.post(
        f"{API}/feedback/", {"conversation_id": conversation_id, "rating": "2"}, "json"
    )
    assert response.json()["kind"] == "csat" and response.json()["rating"] == "2"
    assert Feedback.objects.for_tenant(tenant_a.tenant).count() == 2  # CSAT replaced
    events = Event.objects.for_tenant(tenant_a.tenant).filter(type=EventType.FEEDBACK_RECEIVED)
    assert events.count() == 3  # the fixture's, thumbs, CSAT
    listed = client.get(f"{API}/feedback/?kind=thumbs").json()["results"]
    assert [f["rating"] for f in listed] == ["up"]
    assert client.get(f"{API}/conversations/?rating=up").json()["results"][0]["id"] == (
        conversation_id
    )

    question = {**body, "message_id": resources_a["question"].pk, "rating": "up"}
    assert_error(client.post(f"{API}/feedback/", question, format="json"), 400)
    assert_error(client.post(f"{API}/feedback/", {**body, "rating": "7"}, "json"), 400)
    missing = {**body, "message_id": 2**62, "rating": "up"}
    assert_error(client.post(f"{API}/feedback/", missing, format="json"), 400)
    assert_error(client.post(f"{API}/feedback/", {**body, "rating": "3"}, "json"), 400)
