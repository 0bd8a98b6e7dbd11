"""Corrections: curated answers retrieved first for paraphrases, evaluation cases replayed,
suggested replies grounded in the knowledge (real pipeline; real local LLM where marked)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from apps.conversations import services as chat
from apps.conversations.models import Decision, MessageStatus
from apps.knowledge.models import Document
from apps.workspace import corrections, selectors, services, suggestions
from apps.workspace.models import CuratedAnswer, EvaluationCase
from tests.support.chat import chat_settings, open_chat, receive_answer  # noqa: F401
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401
from tests.support.llm import llm_server, llm_settings  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("knowledge_store")]

RETURNS = (
    "# Returns\n\nYou can return any bike within 30 days of delivery for a full refund. "
    "Start a return from Orders → Return item."
)
SHIPPING = "# Shipping\n\nWe ship to the EU, the UK and Switzerland in 3 to 5 business days."
QUESTION = "How long do I have to return my bike?"
PARAPHRASE = "What is the time limit for sending a bike back?"
RIGHT = "Since 1 March you have 60 days from delivery to return a bike, free of charge."


def _answered(world, question=QUESTION, answer="You have 30 days [1]."):
    conversation = chat.conversation_start(tenant=world.tenant, widget_key=world.widget_key)
    chat.message_post_customer(conversation=conversation, text=question)
    reply = chat.assistant_message_start(conversation=conversation, model="m")
    chat.assistant_message_finish(
        message=reply, content=answer, status=MessageStatus.COMPLETE, decision=Decision.ANSWER
    )
    return conversation, reply


def _returns_document(world):
    ingest_text(tenant=world.tenant, title="Returns", text=RETURNS)
    ingest_text(tenant=world.tenant, title="Shipping", text=SHIPPING)
    return Document.objects.for_tenant(world.tenant).get(title="Returns")


def test_correction_creates_a_curated_answer_and_an_evaluation_case(tenant_a):
    document = _returns_document(tenant_a)
    _, reply = _answered(tenant_a)
    curated, case = corrections.answer_correct(
        message=reply, agent=tenant_a.admin, answer=RIGHT, document_ids=[document.pk]
    )
    assert curated.question == QUESTION  # taken from the customer's message
    assert curated.sources == [{"document_id": str(document.pk), "title": "Returns", "url": ""}]
    assert len(curated.embedding) == 384
    assert case.expected_answer == RIGHT and case.expected_source_ids == [str(document.pk)]


def test_correction_is_retrieved_first_for_a_paraphrase_only_in_its_tenant(tenant_a, tenant_b):
    document = _returns_document(tenant_a)
    _returns_document(tenant_b)
    _, reply = _answered(tenant_a)
    corrections.answer_correct(
        message=reply, agent=tenant_a.admin, answer=RIGHT, document_ids=[document.pk]
    )
    first = suggestions.retrieve_for(tenant=tenant_a.tenant, query=PARAPHRASE, access_groups=None)
    assert first[0].found_by == "curated" and RIGHT in first[0].text
    assert first[0].document_id == str(document.pk)
    assert first[1].title in {"Returns", "Shipping"}  # the knowledge follows
    unrelated = suggestions.retrieve_for(
        tenant=tenant_a.tenant, query="Do you ship to Switzerland?", access_groups=None
    )
    assert all(c.found_by != "curated" for c in unrelated)
    other = suggestions.retrieve_for(tenant=tenant_b.tenant, query=PARAPHRASE, access_groups=None)
    assert all(RIGHT not in c.text for c in other)


@pytest.mark.usefixtures("chat_settings")
async def test_the_assistant_answers_a_paraphrase_from_the_correction_as_source_1(
    tenant_a, settings
):
    from asgiref.sync import sync_to_async

    settings.ASSISTANT_MODE = "extractive"  # the assistant's flow without a model

    @sync_to_async
    def correct():
        document = _returns_document(tenant_a)
        _, reply = _answered(tenant_a)
        corrections.answer_correct(
            message=reply, agent=tenant_a.admin, answer=RIGHT, document_ids=[document.pk]
        )

    await correct()
    customer, _ = await open_chat(tenant_a)
    await customer.send_json_to({"type": "message", "client_id": "p1", "text": PARAPHRASE})
    _, done = await receive_answer(customer, timeout=60)
    assert RIGHT in done["message"]["content"]
    assert done["message"]["citations"][0]["n"] == 1
    assert done["message"]["citations"][0]["title"] == "Returns"
    await customer.disconnect()


def test_agent_without_grant_cannot_correct(tenant_a):
    _, reply = _answered(tenant_a)
    with pytest.raises(services.NotFoundError):
        corrections.answer_correct(message=reply, agent=tenant_a.agent, answer=RIGHT)
    assert not CuratedAnswer.objects.for_tenant(tenant_a.tenant).exists()


def test_correction_form_in_the_admin(client, tenant_a):
    document = _returns_document(tenant_a)
    conversation, reply = _answered(tenant_a)
    client.force_login(tenant_a.admin)
    url = reverse("admin:workspace_conversation_correct", args=[conversation.pk, reply.pk])
    assert QUESTION in client.get(url).content.decode()
    response = client.post(url, {"question": QUESTION, "answer": RIGHT, "sources": [document.pk]})
    assert response.status_code == 302
    assert EvaluationCase.objects.for_tenant(tenant_a.tenant).get().expected_answer == RIGHT


def test_evaluate_answers_replays_the_cases(tenant_a, settings, capsys):
    settings.ASSISTANT_MODE = "extractive"
    document = _returns_document(tenant_a)
    _, reply = _answered(tenant_a)
    corrections.answer_correct(
        message=reply, agent=tenant_a.admin, answer=RIGHT, document_ids=[document.pk]
    )
    EvaluationCase.objects.create(
        tenant=tenant_a.tenant,
        question="Do you ship to Switzerland?",
        expected_answer="Yes, we deliver to Switzerland in 3 to 5 business days.",
        expected_source_ids=["999999"],  # a document no answer can cite
    )
    call_command("evaluate_answers", "--tenant", "acme", "--min-similarity", "0.5")
    out = capsys.readouterr().out
    assert "2 case(s) for acme: 1/2 cite the expected sources" in out
    call_command("evaluate_answers", "--tenant", "acme", "--json", "--min-similarity", "0.5")
    report = json.loads(capsys.readouterr().out)
    by_question = {r["question"]: r for r in report["results"]}
    assert by_question[QUESTION]["cites_expected"] is True
    assert by_question[QUESTION]["similarity"] > 0.5
    assert by_question["Do you ship to Switzerland?"]["cites_expected"] is False
    stored = EvaluationCase.objects.for_tenant(tenant_a.tenant).exclude(last_result={})
    assert stored.count() == 2


@pytest.mark.integration
@pytest.mark.usefixtures("llm_settings")
def test_suggested_reply_is_drafted_by_the_model_with_citations(tenant_a):
    _returns_document(tenant_a)
    conversation = chat.conversation_start(tenant=tenant_a.tenant, widget_key=tenant_a.widget_key)
    chat.message_post_customer(conversation=conversation, text="Can I return my bike?")
    chat.handoff_request(conversation=conversation, reason="customer_request")
    services.inbox_grant(
        inbox=selectors.inbox_default(tenant=tenant_a.tenant), agent=tenant_a.agent
    )
    client = Client()
    client.force_login(tenant_a.agent)
    url = reverse(
        "workspace:suggest", kwargs={"slug": "acme", "conversation_id": conversation.public_id}
    )
    draft = client.post(url, content_type="application/json").json()
    assert draft["mode"] == "llm" and draft["content"].strip()
    assert draft["citations"] and draft["citations"][0]["title"] in {"Returns", "Shipping"}
    # Nothing reached the customer: the draft is the agent's to edit and send.
    assert conversation.messages.filter(role="assistant").count() == 0
    # The agent of another tenant gets nothing.
    client.force_login(tenant_a.outsider)
    assert client.post(url, content_type="application/json").status_code == 404
