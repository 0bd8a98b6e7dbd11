"""Curated answers keep the access groups of what they were drawn from (issue #11, hole 2).

An agent's correction of an answer that quoted a document restricted to group "vip" must not
reach anonymous visitors: the curated answer carries the groups of every document it was
drawn from (those the agent chose and those the corrected answer cited), and only callers who
could see each of those documents get it. The correction form offers only documents the
conversation's customer could see.
"""

from __future__ import annotations

import pytest

from apps.conversations import services as chat
from apps.conversations.models import Decision, MessageStatus
from apps.core.errors import ApplicationError
from apps.knowledge.models import Document
from apps.workspace import corrections, selectors
from apps.workspace.admin.review import CorrectionForm
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_store")]

VIP_TEXT = "# VIP returns\n\nVIP members may return any bike within 120 days, collected at home."
PUBLIC_TEXT = "# Returns\n\nYou can return any bike within 30 days of delivery."
QUESTION = "How long do I have to return my bike?"
PARAPHRASE = "What is the time limit for sending a bike back?"
RIGHT = "VIP members have 120 days and we collect the bike at home."


def _documents(world) -> tuple[Document, Document]:
    ingest_text(tenant=world.tenant, title="VIP returns", text=VIP_TEXT, access_groups=["vip"])
    ingest_text(tenant=world.tenant, title="Returns", text=PUBLIC_TEXT)
    documents = Document.objects.for_tenant(world.tenant)
    return documents.get(title="VIP returns"), documents.get(title="Returns")


def _answered(world, *, groups: list[str], cited: Document | None):
    conversation = chat.conversation_start(
        tenant=world.tenant, widget_key=world.widget_key, access_groups=groups
    )
    chat.message_post_customer(conversation=conversation, text=QUESTION)
    reply = chat.assistant_message_start(conversation=conversation, model="m")
    citations = (
        [{"n": 1, "document_id": str(cited.pk), "title": cited.title, "snippet": "120 days"}]
        if cited
        else []
    )
    chat.assistant_message_finish(
        message=reply,
        content="You have 120 days [1].",
        status=MessageStatus.COMPLETE,
        decision=Decision.ANSWER,
        citations=citations,
    )
    return conversation, reply


def _curated_texts(world, **kwargs) -> list[str]:
    chunks = selectors.with_curated_first(
        tenant=world.tenant, query=PARAPHRASE, chunks=[], **kwargs
    )
    return [c.text for c in chunks if c.found_by == "curated"]


def test_correction_drawn_from_a_vip_document_reaches_only_vip_callers(tenant_a):
    vip, _ = _documents(tenant_a)
    _, reply = _answered(tenant_a, groups=["vip"], cited=vip)
    curated, _ = corrections.answer_correct(
        message=reply, agent=tenant_a.admin, answer=RIGHT, document_ids=[vip.pk]
    )
    assert curated.access_groups == [["vip"]]
    # How the assistant calls it today (no groups: an anonymous visitor) gets nothing.
    assert _curated_texts(tenant_a) == []
    assert _curated_texts(tenant_a, access_groups=None) == []
    assert _curated_texts(tenant_a, access_groups=["gold"]) == []
    assert any(RIGHT in t for t in _curated_texts(tenant_a, access_groups=["vip", "gold"]))


def test_correction_inherits_the_groups_of_what_the_wrong_answer_cited(tenant_a):
    vip, public = _documents(tenant_a)
    _, reply = _answered(tenant_a, groups=["vip"], cited=vip)
    # The agent points only at the public page, but the answer they corrected quoted VIP text.
    curated, _ = corrections.answer_correct(
        message=reply, agent=tenant_a.admin, answer=RIGHT, document_ids=[public.pk]
    )
    assert curated.access_groups == [["vip"]]
    assert _curated_texts(tenant_a) == []


def test_public_correction_still_reaches_everyone(tenant_a):
    _, public = _documents(tenant_a)
    _, reply = _answered(tenant_a, groups=[], cited=public)
    curated, _ = corrections.answer_correct(
        message=reply, agent=tenant_a.admin, answer="30 days.", document_ids=[public.pk]
    )
    assert curated.access_groups == []
    assert any("30 days." in t for t in _curated_texts(tenant_a))


def test_correction_form_and_service_offer_only_what_the_customer_could_see(tenant_a):
    vip, public = _documents(tenant_a)
    conversation, reply = _answered(tenant_a, groups=[], cited=public)
    form = CorrectionForm(tenant=tenant_a.tenant, conversation=conversation)
    assert list(form.fields["sources"].queryset) == [public]
    with pytest.raises(ApplicationError):
        corrections.answer_correct(
            message=reply, agent=tenant_a.admin, answer=RIGHT, document_ids=[vip.pk]
        )
    vip_conversation, _ = _answered(tenant_a, groups=["vip"], cited=None)
    form = CorrectionForm(tenant=tenant_a.tenant, conversation=vip_conversation)
    assert set(form.fields["sources"].queryset) == {vip, public}


@pytest.mark.django_db(transaction=True)
def test_migration_restricts_curated_answers_made_before_access_groups(tenant_a):
    """Answers made before the field existed get their documents' groups, not public."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    vip, public = _documents(tenant_a)
    _, reply = _answered(tenant_a, groups=["vip"], cited=vip)
    before, after = (
        ("workspace", "0001_initial"),
        ("workspace", "0002_curated_answer_access_groups"),
    )
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        old = executor.loader.project_state([before]).apps.get_model("workspace", "CuratedAnswer")
        common = {"tenant_id": tenant_a.tenant.pk, "question": "Q?", "answer": "A."}
        chosen = old._base_manager.create(
            **common, sources=[{"document_id": str(vip.pk), "title": "VIP returns"}]
        )
        cited = old._base_manager.create(
            **common, sources=[{"document_id": str(public.pk)}], corrected_message_id=reply.pk
        )
        open_ = old._base_manager.create(**common, sources=[{"document_id": str(public.pk)}])
        executor = MigrationExecutor(connection)
        executor.migrate([after])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    from apps.workspace.models import CuratedAnswer

    groups = dict(
        CuratedAnswer.objects.for_tenant(tenant_a.tenant).values_list("pk", "access_groups")
    )
    assert groups[chosen.pk] == [["vip"]]
    assert groups[cited.pk] == [["vip"]]
    assert groups[open_.pk] == []
