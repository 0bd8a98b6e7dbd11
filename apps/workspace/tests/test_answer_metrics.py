"""Unit tests of the answer metrics (plain records, no database, no model)."""

from __future__ import annotations

import pytest

from apps.workspace import answer_metrics as m
from apps.workspace import answer_numbers

KNOWLEDGE = (
    "You have **30 days** from delivery to return it. A prepaid label for parts costs $6.95, "
    "freight pickup $99. Refunds arrive within 7 business days. Gift cards from $25 to $1,000. "
    "Call +1 (503) 555-0142, Monday to Friday 8:00 to 18:00. A full charge takes about 5 "
    "hours; charging to 80% takes about 3 hours. Cancel within 2 hours of ordering."
)
ALLOWED = answer_numbers.knowledge_numbers(KNOWLEDGE)
RETURNS_DOC = ["Returns And Refunds", "Returns and Refunds"]
SHIPPING_DOC = ["Shipping And Delivery", "Shipping and Delivery"]


def record(**kwargs) -> m.AnswerRecord:
    values = {
        "question": "How long do I have to return my bike?",
        "strategy": "grounded",
        "answerable": True,
        "facts": [r"30[- ]days?"],
        "article": "returns-and-refunds.md",
        "content": "You have 30 days from delivery to return it [1].",
        "decision": "answer",
        "outcome": "grounded",
        "cited_documents": [RETURNS_DOC],
        "citations": 1,
        "sources_text": KNOWLEDGE,
        "first_token_ms": 500,
        "total_ms": 900,
    }
    return m.AnswerRecord(**(values | kwargs))


def score(**kwargs) -> m.AnswerScore:
    return m.score_answer(record(**kwargs), allowed_numbers=ALLOWED)


# --- Facts --------------------------------------------------------------------------------------


def test_a_stated_fact_matches_case_insensitively_through_markdown_and_markers():
    assert m.fact_matches("Returns: **30 Days** [1].", [r"30 days"]) == [True]
    assert m.fact_matches("The label is $6.95[2].", [r"\$6\.95"]) == [True]


def test_a_wrong_fact_does_not_match():
    assert m.fact_matches("The return label costs $3.50 [1].", [r"\$?6\.95"]) == [False]


def test_fact_recall_counts_facts_over_answerable_questions():
    scores = [
        score(facts=[r"30 days", r"7 business days"]),  # 1 of 2
        score(content="The label is $6.95 [1].", facts=[r"6\.95"]),  # 1 of 1
        score(answerable=False, facts=[], article=None, decision="decline", outcome="declined"),
    ]
    assert scores[0].missing_facts == [r"7 business days"]
    assert m.summarize(scores)["fact_recall"] == pytest.approx(2 / 3)


def test_a_declined_answer_states_no_fact_even_if_its_text_contains_one():
    declined = score(content="I can't help with the 30 days question.", decision="decline")
    assert declined.declined and declined.facts_matched == 0


# --- Invented numbers ---------------------------------------------------------------------------


def test_a_wrong_amount_is_an_invented_number():
    assert score(content="The return label costs $3.50 [1].").invented == ["amount:3.5"]


def test_an_amount_must_be_an_amount_of_the_knowledge_not_just_any_number():
    # 7 occurs ("7 business days"), $7 does not; 30 occurs, 30 % does not.
    assert answer_numbers.invented_numbers("A new battery costs $7.", ALLOWED) == ["amount:7"]
    assert answer_numbers.invented_numbers("Refunds take 7 days.", ALLOWED) == []
    assert answer_numbers.invented_numbers("You get 30% back.", ALLOWED) == ["percent:30"]
    assert answer_numbers.invented_numbers("Charge to 80 percent.", ALLOWED) == []


def test_an_invented_phone_number_and_salary_count():
    assert answer_numbers.invented_numbers("Call us on 1-800-555-1234.", ALLOWED) == [
        "phone:8005551234"
    ]
    assert answer_numbers.invented_numbers("Our CEO earns $235,000.", ALLOWED) == ["amount:235000"]
    assert answer_numbers.invented_numbers("We are open 9 am to 5 pm.", ALLOWED) == [
        "time:17:00",
        "time:9:00",
    ]


def test_paraphrased_real_numbers_are_not_invented():
    answer = (
        "You have thirty days to return it [1]. The label is 6.95 USD and refunds take seven "
        "business days [2]. Gift cards go up to 1000 dollars. Charging takes five hours, or "
        "three hours to 80 percent. Call (503) 555-0142 or 555-0142 between 8 am and 6 pm."
    )
    assert answer_numbers.invented_numbers(answer, ALLOWED) == []


def test_citation_markers_and_list_numbering_are_not_numbers():
    answer = "1. Sign in [12].\n2. Open the order [3, 14].\n3) Click return [15]."
    assert answer_numbers.numbers_in(answer) == set()
    assert answer_numbers.numbers_in("- 4. Pack it") == set()


def test_numbers_from_the_question_may_be_repeated():
    answer = "Above 100 miles the bike cannot be returned [1]."
    assert answer_numbers.invented_numbers(answer, ALLOWED) == ["100"]
    assert score(question="I rode it 100 miles, can I return it?", content=answer).invented == []


def test_spelled_out_numbers_are_compared_as_digits():
    assert answer_numbers.words_to_digits("twenty-five or two hours") == "25 or 2 hours"
    assert answer_numbers.numbers_in("thirty-one days") == {"31"}
    assert answer_numbers.invented_numbers("It takes two hours.", ALLOWED) == []


def test_invented_number_rate_is_the_share_of_answers_with_one():
    scores = [score(), score(content="It costs $4.20 [1]."), score(), score()]
    assert m.summarize(scores)["invented_number_rate"] == pytest.approx(0.25)


# --- Unsupported sentences ----------------------------------------------------------------------


def test_a_sentence_from_the_sources_is_supported_and_an_invented_one_is_not():
    judged, unsupported = m.unsupported_sentences(
        "You have 30 days from delivery to return it [1]. "
        "The frame is located at the bottom of the cardboard box near the pedals.",
        KNOWLEDGE,
    )
    assert judged == 2
    assert unsupported == [
        "The frame is located at the bottom of the cardboard box near the pedals."
    ]


def test_a_paraphrase_with_the_sources_words_is_supported():
    judged, unsupported = m.unsupported_sentences(
        "Returning it is possible within 30 days after the delivery.", KNOWLEDGE
    )
    assert (judged, unsupported) == (1, [])


def test_short_sentences_are_not_judged():
    assert m.unsupported_sentences("Sure! Happy riding.", KNOWLEDGE) == (0, [])


def test_an_answer_without_cited_text_is_unsupported():
    assert score(sources_text="", cited_documents=[], citations=0).unsupported


def test_declined_answers_have_no_judged_sentences():
    declined = score(
        content="Sorry, I cannot answer that from our help center.", outcome="declined"
    )
    assert declined.sentences_judged == 0


def test_unsupported_sentence_rate_is_over_judged_sentences():
    scores = [
        score(content="You have 30 days from delivery to return it [1]."),
        score(content="The capital of Australia is Sydney, a lovely harbour city."),
    ]
    summary = m.summarize(scores)
    assert summary["sentences_judged"] == 2
    assert summary["unsupported_sentence_rate"] == pytest.approx(0.5)


# --- Citations ----------------------------------------------------------------------------------


def test_citation_precision_is_the_share_of_cited_documents_that_are_the_article():
    assert m.citation_precision([RETURNS_DOC], "returns-and-refunds.md") == 1.0
    assert m.citation_precision([RETURNS_DOC, SHIPPING_DOC], "returns-and-refunds.md") == 0.5
    assert m.citation_precision([SHIPPING_DOC], "returns-and-refunds.md") == 0.0
    assert m.citation_precision([], "returns-and-refunds.md") is None


def test_citation_precision_aggregates_over_cited_documents():
    scores = [
        score(cited_documents=[RETURNS_DOC, SHIPPING_DOC], citations=2),
        score(cited_documents=[RETURNS_DOC], citations=1),
        score(cited_documents=[], citations=0),  # nothing cited: not counted
    ]
    assert m.summarize(scores)["citation_precision"] == pytest.approx(2 / 3)
    assert "cites none of returns-and-refunds.md" in score(cited_documents=[SHIPPING_DOC]).failures


def test_the_same_document_cited_twice_is_flagged():
    twice = score(cited_documents=[RETURNS_DOC], citations=2)
    assert twice.duplicate_citations
    assert m.summarize([twice, score()])["answers_citing_a_document_twice"] == 1


# --- Abstention ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "outcome", "declined"),
    [
        ("decline", "declined", True),
        ("handoff", "handoff", True),
        ("answer", "chitchat", True),
        ("answer", "grounded", False),
        ("extractive", "fell_back", False),
        ("clarify", "", False),
    ],
)
def test_what_counts_as_declined(decision, outcome, declined):
    assert m.is_declined(decision, outcome) is declined


def out_of_scope(**kwargs) -> m.AnswerScore:
    values = {
        "question": "What is the capital of Australia?",
        "answerable": False,
        "facts": [],
        "article": None,
        "content": "Sorry, I can only help with questions about Northwind Bikes.",
        "decision": "decline",
        "outcome": "declined",
        "cited_documents": [],
        "citations": 0,
    }
    return score(**(values | kwargs))


def test_abstention_precision_recall_and_wrongly_declined():
    scores = [
        out_of_scope(),  # declined, right
        out_of_scope(),  # declined, right
        out_of_scope(content="The capital is Sydney.", decision="answer", outcome="generative"),
        score(),  # answered, right
        score(decision="decline", outcome="declined", content="Sorry, I don't know."),  # wrong
    ]
    summary = m.summarize(scores)
    assert summary["abstention_recall"] == pytest.approx(2 / 3)
    assert summary["abstention_precision"] == pytest.approx(2 / 3)
    assert summary["wrongly_declined_rate"] == pytest.approx(0.5)
    assert "answerable question declined" in scores[4].failures
    assert "out-of-scope question answered" in scores[2].failures


def test_rates_without_any_decline_are_undefined_not_zero():
    summary = m.summarize([score()])
    assert summary["abstention_precision"] is None and summary["abstention_recall"] is None
    assert summary["wrongly_declined_rate"] == 0.0


# --- Markup, latency, errors --------------------------------------------------------------------


def test_html_tags_are_markup_and_autolinks_are_not():
    assert m.markup_in('Here <script src="x.js"></script> and </p>') == [
        "<script",
        "</script",
        "</p",
    ]
    assert m.markup_in("Email <support@northwind-bikes.example> or see <https://a.example>.") == []
    assert m.markup_in("5 < 6 and a<b") == ["<b"]
    summary = m.summarize([score(content="Hi <br/> there"), score()])
    assert summary["answers_with_markup"] == 1


def test_ttft_percentiles_interpolate_over_measured_answers():
    scores = [score(first_token_ms=ms) for ms in (100, 200, 300, 400, 1000)]
    scores.append(score(first_token_ms=None))
    summary = m.summarize(scores)
    assert summary["ttft_p50_ms"] == 300
    assert summary["ttft_p95_ms"] == pytest.approx(880)
    assert summary["ttft_measured"] == 5
    assert m.percentile([], 50) is None


def test_an_error_counts_as_a_failed_answer():
    failed = score(
        content="", decision="", outcome="", error="TimeoutError: LLM", cited_documents=[]
    )
    assert failed.failures[0] == "error: TimeoutError: LLM"
    summary = m.summarize([failed, score()])
    assert summary["errors"] == 1 and summary["fact_recall"] == 0.5
    assert summary["invented_number_rate"] == 0.0  # over the answers that came back


def test_article_keys_match_file_source_and_title_forms():
    assert m.article_key("returns-and-refunds.md") == m.article_key("Returns And Refunds")
    assert m.article_key("Returns_and_refunds.MD") == "returns-and-refunds"
