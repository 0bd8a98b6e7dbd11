"""The rerank through the real pipeline and the real store (Qdrant Edge): window vectors are
stored in the payloads at ingestion (when enabled), the rerank reorders what the scoped search
returned, and the tenant and access filters still decide what can come back."""

from __future__ import annotations

import numpy as np
import pytest

from apps.knowledge import selectors
from apps.knowledge.rerank import (
    WINDOWS_FIELD,
    RerankWeights,
    content_words,
    phrase_pairs,
    phrase_score,
    spaced_words,
    title_score,
    window_texts,
)
from apps.knowledge.selectors import chunk_search
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_store")]


@pytest.fixture
def windows(settings):
    settings.KNOWLEDGE_RERANK_WINDOWS = True


QUESTION = "How long is the password reset link valid?"

ARTICLES = {
    # Names the topic everywhere, but never says how long the link lasts.
    "Password reset": (
        "Forgot your password? Use the password reset page to choose a new password. "
        "Reset your password from the sign-in page with the email of your account. "
        "A good password has at least twelve characters and is not used anywhere else."
    ),
    # Mostly about other things; one sentence answers the question.
    "Account emails": (
        "We send an email when your order ships. Invoices arrive by email as PDF files. "
        "Newsletters can be turned off in your profile at any time. Order confirmations list "
        "every item, its price and the delivery address. Receipts for in-store purchases can "
        "be emailed at the till. Marketing emails never contain attachments. "
        "The link in a reset email stays valid for 60 minutes after we send it. "
        "Email changes need a confirmation from the old address. We never ask for your card "
        "number by email. Unsubscribing takes effect within two days."
    ),
    "Shipping": (
        "Orders leave our warehouse within two business days. Delivery takes three to five "
        "business days in Europe. Tracking links arrive by email."
    ),
}


def ingest_articles(tenant, **kwargs):
    for title, text in ARTICLES.items():
        ingest_text(tenant=tenant, title=title, text=text, **kwargs)


def expected_maxsim_order(results, embedder, question):
    """Candidates by their best window's cosine to the question, computed here from scratch."""
    q = embedder.embed_query(question)

    def best(result):
        vectors = embedder.embed_documents(window_texts(result.text, result.heading_path))
        return float(np.max(vectors @ q))

    return [r.chunk_id for r in sorted(results, key=best, reverse=True)]


def stored_payloads(tenant):
    from apps.knowledge import runtime
    from apps.knowledge.selectors import raw_search, search_scope

    hits = raw_search(
        scope=search_scope(tenant=tenant, access_groups=None),
        query=QUESTION,
        mode="hybrid",
        limit=3,
        store=runtime.get_store(),
        rerank=False,
    )
    assert hits
    return [h.payload for h in hits]


@pytest.mark.usefixtures("windows")
def test_ingestion_stores_window_vectors_in_the_payload_when_enabled(tenant_a):
    ingest_articles(tenant_a.tenant)
    assert all(payload.get(WINDOWS_FIELD) for payload in stored_payloads(tenant_a.tenant))


def test_window_vectors_cost_nothing_by_default(tenant_a):
    ingest_articles(tenant_a.tenant)
    assert not any(WINDOWS_FIELD in payload for payload in stored_payloads(tenant_a.tenant))


@pytest.mark.usefixtures("windows")
def test_rerank_reorders_the_store_results_by_the_best_sentence(tenant_a, monkeypatch):
    from apps.knowledge import runtime

    ingest_articles(tenant_a.tenant)
    fused = chunk_search(tenant=tenant_a.tenant, query=QUESTION, limit=3, rerank=False)

    # Max-sim alone: the order must be the one the windows' cosines give.
    monkeypatch.setattr(
        selectors, "RERANK_WEIGHTS", RerankWeights(fused=0, maxsim=1, phrase=0, title=0)
    )
    reranked = chunk_search(tenant=tenant_a.tenant, query=QUESTION, limit=3, rerank=True)
    assert {r.chunk_id for r in reranked} == {r.chunk_id for r in fused}
    assert [r.chunk_id for r in reranked] == expected_maxsim_order(
        fused, runtime.get_embedder(), QUESTION
    )
    assert [r.rank for r in reranked] == [1, 2, 3]


def test_rerank_changes_the_fused_order_as_its_signal_says(tenant_a, monkeypatch):
    ingest_articles(tenant_a.tenant)
    question = "How long is the reset link valid for?"
    fused = chunk_search(tenant=tenant_a.tenant, query=question, limit=3, rerank=False)
    assert [r.title for r in fused][:2] == ["Account emails", "Password reset"]
    # Title matches alone: only "Password reset" shares a word ("reset") with the question.
    monkeypatch.setattr(
        selectors, "RERANK_WEIGHTS", RerankWeights(fused=0, maxsim=0, phrase=0, title=1)
    )
    reranked = chunk_search(tenant=tenant_a.tenant, query=question, limit=3)
    terms = set(content_words(question))
    share = {r.chunk_id: title_score(terms, " ".join(r.heading_path)) for r in fused}
    expected = sorted(fused, key=lambda r: -share[r.chunk_id])  # ties keep the fused order
    assert [r.chunk_id for r in reranked] == [r.chunk_id for r in expected]
    assert [r.title for r in reranked][:2] == ["Password reset", "Account emails"]


def test_rerank_by_exact_phrases_through_the_store(tenant_a, monkeypatch):
    ingest_articles(tenant_a.tenant)
    question = "when does the reset email link expire"
    fused = chunk_search(tenant=tenant_a.tenant, query=question, limit=3, rerank=False)
    default = chunk_search(tenant=tenant_a.tenant, query=question, limit=3)
    assert {r.chunk_id for r in default} == {r.chunk_id for r in fused}
    # The phrase signal alone: "reset email" is verbatim in one article only.
    monkeypatch.setattr(
        selectors, "RERANK_WEIGHTS", RerankWeights(fused=0, maxsim=0, phrase=1, title=0)
    )
    by_phrase = chunk_search(tenant=tenant_a.tenant, query=question, limit=3)
    pairs = phrase_pairs(spaced_words(question).split())
    share = {r.chunk_id: phrase_score(pairs, spaced_words(r.text)) for r in fused}
    expected = sorted(fused, key=lambda r: -share[r.chunk_id])  # ties keep the fused order
    assert [r.chunk_id for r in by_phrase] == [r.chunk_id for r in expected]
    assert by_phrase[0].title == "Account emails"


def test_rerank_never_brings_back_what_the_filters_hide(tenant_a, tenant_b):
    # Only a VIP document answers; the public pages do not.
    ingest_text(
        tenant=tenant_a.tenant,
        title="VIP reset links",
        text="For VIP accounts the password reset link stays valid for 24 hours.",
        access_groups=["vip"],
    )
    ingest_articles(tenant_b.tenant)
    ingest_text(tenant=tenant_a.tenant, title="Shipping", text=ARTICLES["Shipping"])

    anonymous = chunk_search(tenant=tenant_a.tenant, query=QUESTION, limit=10)
    assert "VIP reset links" not in {r.title for r in anonymous}
    assert {r.title for r in anonymous} <= {"Shipping"}  # tenant B's pages never appear
    vip = chunk_search(tenant=tenant_a.tenant, query=QUESTION, limit=10, access_groups=["vip"])
    assert vip[0].title == "VIP reset links"


def test_page_signal_groups_chunks_by_their_stored_address(tenant_a, monkeypatch):
    page = "https://gov.test/working-tax-credit/eligibility"
    ingest_text(
        tenant=tenant_a.tenant,
        title="Working Tax Credit",
        text="You may get Working Tax Credit if you work and earn a low income.",
        url=page,
    )
    ingest_text(
        tenant=tenant_a.tenant,
        title="Your pay",
        text="The work must last at least 4 weeks and must be paid.",
        url=page + "#your-pay",
    )
    ingest_text(
        tenant=tenant_a.tenant,
        title="Pay slips",
        text="Your employer must give you a pay slip showing your pay for the work.",
        url="https://gov.test/payslips",
    )
    question = "Does Working Tax Credit need my employer to give me a pay slip for my work?"
    fused = chunk_search(tenant=tenant_a.tenant, query=question, limit=3, rerank=False)
    assert len(fused) == 3
    assert fused[-1].title == "Your pay"  # its own words match the question least
    # The page signal alone: each chunk scores the best other candidate of its page (fused,
    # min-max over the candidates), so the weakest chunk rises to the top on the strength of
    # its page-mate, and the page of its own gets nothing.
    monkeypatch.setattr(
        selectors, "RERANK_WEIGHTS", RerankWeights(fused=0, maxsim=0, phrase=0, title=0, page=1)
    )
    by_page = chunk_search(tenant=tenant_a.tenant, query=question, limit=3)
    assert by_page[0].title == "Your pay"
    assert by_page[0].score > 0
    assert by_page[0].url.split("#")[0] == page
    assert next(r.score for r in by_page if r.title == "Pay slips") == 0
