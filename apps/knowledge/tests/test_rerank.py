"""Query shaping and the rerank's scoring, without a store or a model (hand-made vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from apps.knowledge.embeddings import SparseEncoder
from apps.knowledge.rerank import (
    MAX_WINDOWS,
    WINDOWS_FIELD,
    QueryParts,
    RerankQuery,
    RerankWeights,
    mix_query_vectors,
    pack_vectors,
    page_key,
    page_support,
    phrase_pairs,
    phrase_score,
    rerank,
    sentence_windows,
    spaced_words,
    split_query,
    title_score,
    unpack_vectors,
    weighted_query_terms,
)
from apps.knowledge.vectorstore.base import SearchHit


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def hit(pid: str, score: float, **payload) -> SearchHit:
    return SearchHit(id=pid, score=score, payload={"text": "", "title": "", **payload})


# --------------------------------------------------------------------------- query side


def test_split_query_separates_the_scenario_from_the_question():
    parts = split_query(
        "I received the Guarantee Credit component of the Pension Credit.\n"
        "Can I apply directly to my electricity supplier?"
    )
    assert parts.question == "Can I apply directly to my electricity supplier?"
    assert parts.context == "I received the Guarantee Credit component of the Pension Credit."


def test_split_query_takes_the_last_question_even_with_a_sentence_after_it():
    parts = split_query("Can I still cancel my order? I placed it about an hour ago.")
    assert parts.question == "Can I still cancel my order?"
    assert parts.context == "I placed it about an hour ago."


@pytest.mark.parametrize(
    "text",
    ["how long does delivery of an ebike take?", "My bike broke. Can I?", "  refund  "],
)
def test_split_query_leaves_single_or_bare_questions_whole(text):
    parts = split_query(text)
    assert parts == QueryParts(question=text.strip())
    assert parts.full == text.strip()


def test_weighted_terms_weigh_question_words_one_and_scenario_words_less():
    parts = QueryParts(question="Can I claim pension credit?", context="I live abroad on a pension")
    weights = weighted_query_terms(parts, SparseEncoder().tokenize, 0.3)
    assert weights["pension"] == 1.0  # in the question too
    assert weights["claim"] == 1.0 and weights["credit"] == 1.0
    assert weights["live"] == 0.3 and weights["abroad"] == 0.3


def test_encode_weighted_query_keeps_weights_and_drops_zeros():
    encoder = SparseEncoder()
    vector = encoder.encode_weighted_query({"pension": 1.0, "abroad": 0.5, "live": 0.0})
    by_id = dict(zip(vector.indices, vector.values, strict=True))
    assert by_id == {encoder.term_id("pension"): 1.0, encoder.term_id("abroad"): 0.5}
    assert vector.indices == sorted(vector.indices)


def test_mix_query_vectors_is_a_unit_vector_between_the_two():
    full, question = unit(1, 0), unit(0, 1)
    mixed = mix_query_vectors(full, question, 1.0)
    assert np.linalg.norm(mixed) == pytest.approx(1.0)
    assert mixed == pytest.approx(unit(1, 1))
    assert mix_query_vectors(full, question, 0.0) == pytest.approx(full)


# --------------------------------------------------------------------------- document side


def test_sentence_windows_pair_neighbours_and_stay_capped():
    assert sentence_windows("One. Two.") == ["One. Two."]
    assert sentence_windows("One. Two. Three.") == ["One. Two.", "Two. Three."]
    assert sentence_windows("") == []
    many = " ".join(f"Sentence {i}." for i in range(40))
    windows = sentence_windows(many)
    assert len(windows) == MAX_WINDOWS
    assert windows[0] == "Sentence 0. Sentence 1." and "Sentence 3" in windows[-1]


def test_packed_vectors_come_back_as_nearly_the_same_unit_vectors():
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(5, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    back = unpack_vectors(pack_vectors(vectors))
    assert back.shape == (5, 384)
    assert np.min(np.sum(back * vectors, axis=1)) > 0.999
    assert unpack_vectors("not packed") is None


# --------------------------------------------------------------------------- rerank


def test_phrase_and_title_scores():
    pairs = phrase_pairs(["how", "do", "i", "reset", "my", "password"])
    assert pairs == [" i reset ", " my password ", " reset my "]  # not "how do", "do i"
    assert spaced_words("Reset my password: it's quick!") == " reset my password it s quick "
    assert phrase_score(pairs, spaced_words("To reset my password, click here.")) == 2 / 3
    assert phrase_score(pairs, spaced_words("Reset the password of my account")) == 0.0
    assert phrase_score([], " anything ") == 0.0
    assert title_score({"reset", "password"}, "Account and password") == 0.5
    assert title_score(set(), "Anything") == 0.0


def test_best_matching_window_lifts_a_candidate_above_a_better_fused_one():
    query_vector = unit(1, 0, 0)
    hits = [
        hit("a", 0.9, **{WINDOWS_FIELD: pack_vectors(np.vstack([unit(0, 1, 0)]))}),
        hit("b", 0.8, **{WINDOWS_FIELD: pack_vectors(np.vstack([unit(0, 0, 1), unit(1, 0.1, 0)]))}),
        hit("c", 0.1, **{WINDOWS_FIELD: pack_vectors(np.vstack([unit(0, 1, 1)]))}),
    ]
    query = RerankQuery(parts=QueryParts(question="anything"), vector=query_vector)
    out = rerank(hits, query=query, weights=RerankWeights(maxsim=1.0, phrase=0, title=0), limit=3)
    assert [h.id for h in out] == ["b", "a", "c"]
    assert out[0].score > out[1].score
    # Without the max-sim signal the fused order stays.
    out = rerank(hits, query=query, weights=RerankWeights(maxsim=0, phrase=0, title=0), limit=3)
    assert [h.id for h in out] == ["a", "b", "c"]


def test_title_match_reorders_and_limit_cuts():
    hits = [
        hit("shipping", 1.0, title="Shipping and delivery"),
        hit("warranty", 0.95, title="Frame warranty", heading_path=["Warranty", "Frame"]),
        hit("other", 0.0, title="Payments"),
    ]
    query = RerankQuery(parts=QueryParts(question="how long is the frame warranty"), vector=None)
    out = rerank(hits, query=query, weights=RerankWeights(title=0.5, phrase=0), limit=2)
    assert [h.id for h in out] == ["warranty", "shipping"]


def test_candidates_without_windows_are_neither_favoured_nor_dropped():
    query_vector = unit(1, 0)
    hits = [
        hit("old", 1.0),  # a point from an index built before window vectors
        hit("new", 0.5, **{WINDOWS_FIELD: pack_vectors(np.vstack([unit(1, 0)]))}),
        hit("weak", 0.0, **{WINDOWS_FIELD: pack_vectors(np.vstack([unit(0, 1)]))}),
    ]
    query = RerankQuery(parts=QueryParts(question="q"), vector=query_vector)
    out = rerank(hits, query=query, weights=RerankWeights(maxsim=1.0, phrase=0, title=0), limit=10)
    # old: fused 1 + weakest max-sim (0); new: fused 0.5 + max-sim 1.
    assert [h.id for h in out] == ["new", "old", "weak"]
    assert {h.id for h in out} == {h.id for h in hits}


def test_rerank_of_nothing_is_nothing():
    query = RerankQuery(parts=QueryParts(question="q"), vector=None)
    assert rerank([], query=query, weights=RerankWeights(), limit=5) == []


def test_page_key_is_the_address_without_fragment_else_the_document_else_the_point():
    assert page_key(hit("a", 1, url="https://x.test/wtc#pay", document_id="d1")) == (
        "url:https://x.test/wtc"
    )
    assert page_key(hit("b", 1, url="https://x.test/wtc", document_id="d2")) == (
        "url:https://x.test/wtc"
    )
    assert page_key(hit("c", 1, url="", document_id="d1")) == "doc:d1"
    assert page_key(hit("d", 1)) == "point:d"


def test_page_support_is_the_best_other_candidate_of_the_same_page():
    keys = ["p", "q", "p", "p", "r"]
    fused = [1.0, 0.9, 0.4, 0.4, 0.2]
    # The page's best gets its runner-up; the others get the page's best; alone gets 0.
    assert page_support(keys, fused) == [0.4, 0.0, 1.0, 1.0, 0.0]
    assert page_support(["p", "p"], [0.5, 0.5]) == [0.5, 0.5]
    assert page_support([], []) == []


def test_a_chunk_of_the_page_the_candidates_agree_on_rises_above_a_lone_match():
    page = "https://gov.test/working-tax-credit/eligibility"
    hits = [
        hit("overview", 1.0, url=page, document_id="d1"),
        hit("lone", 0.6, url="https://gov.test/other", document_id="d2"),
        hit("your-pay", 0.5, url=page + "#pay", document_id="d3"),
        hit("weak", 0.0, document_id="d4"),
    ]
    query = RerankQuery(parts=QueryParts(question="am i eligible"), vector=None)
    out = rerank(hits, query=query, weights=RerankWeights(phrase=0, page=0.2), limit=4)
    # your-pay: 0.5 + 0.2 * 1.0 = 0.7 > lone: 0.6 (alone on its page).
    assert [h.id for h in out] == ["overview", "your-pay", "lone", "weak"]
    assert out[1].score == pytest.approx(0.7)
    # Without the page signal the fused order stays.
    out = rerank(hits, query=query, weights=RerankWeights(phrase=0, page=0), limit=4)
    assert [h.id for h in out] == ["overview", "lone", "your-pay", "weak"]
