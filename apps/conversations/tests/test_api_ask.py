"""The ask API: an answer with citations in an API conversation, and what happens when the
knowledge has nothing relevant. Isolation, scopes and dead keys: tests/test_api_isolation.py.
"""

from __future__ import annotations

import pytest

from apps.assistant import prompts
from apps.conversations import services as chat
from apps.conversations.models import Conversation
from tests.support.api import API, RETURNS, assert_error
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = pytest.mark.usefixtures("fresh_cache", "knowledge_store")


# The answer flow runs database work through channels' database_sync_to_async, which
# closes connections: these tests need real transactions.
@pytest.mark.django_db(transaction=True)
def test_ask_answers_with_citations_in_a_new_api_conversation(tenant_a, api_key_for, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: extractive fallback
    ingest_text(tenant=tenant_a.tenant, title="Returns", text=RETURNS, url="https://a.example/r")
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    response = client.post(f"{API}/ask/", {"question": "How long do I have to return?"}, "json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["decision"] in {"answer", "extractive"} and not body["handed_off"]
    assert body["question"]["role"] == "customer"
    answer = body["answer"]
    assert answer["role"] == "assistant" and answer["status"] == "complete"
    assert "30 days" in answer["content"]
    assert answer["citations"][0]["title"] == "Returns"
    assert answer["citations"][0]["url"] == "https://a.example/r"
    conversation = Conversation.objects.for_tenant(tenant_a.tenant).get(
        public_id=body["conversation_id"]
    )
    assert conversation.channel == "api"
    assert conversation.messages.count() == 2

    # A follow-up in the same conversation; then a person takes it and the assistant stops.
    follow_up = {"question": "And the label?", "conversation_id": body["conversation_id"]}
    assert client.post(f"{API}/ask/", follow_up, format="json").status_code == 200
    assert conversation.messages.count() == 4
    chat.conversation_assign(conversation=conversation, agent=tenant_a.agent)
    assert_error(client.post(f"{API}/ask/", follow_up, format="json"), 409, "conflict")
    assert_error(client.post(f"{API}/ask/", {"question": " "}, format="json"), 400)


# The answer flow runs database work through channels' database_sync_to_async, which
# closes connections: these tests need real transactions.
@pytest.mark.django_db(transaction=True)
def test_ask_with_nothing_relevant_offers_a_person_or_hands_off(tenant_a, api_key_for, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    client = api_key_for(tenant_a.tenant, scopes=["conversations:write"])
    # The default: say the help center has no answer and offer a person, without a handoff.
    response = client.post(f"{API}/ask/", {"question": "Can I pay in bitcoin?"}, "json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert not body["handed_off"] and body["conversation_status"] != "waiting_for_human"
    assert body["answer"]["content"] == prompts.NOT_FOUND_TEXT + prompts.OFFER_PERSON_TEXT
    assert body["answer"]["citations"] == []
    # A tenant that hands such questions to a person.
    tenant_a.tenant.unanswerable_action = "handoff"
    tenant_a.tenant.save(update_fields=["unanswerable_action"])
    response = client.post(f"{API}/ask/", {"question": "Can I pay in bitcoin?"}, "json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["handed_off"] and body["conversation_status"] == "waiting_for_human"
    assert body["answer"]["citations"] == []
