"""Answerability signals: words the knowledge never uses, "how much" without an amount, and the
follow-up sentence that completes the best one (real MiniLM encoder, no database)."""

from __future__ import annotations

import pytest

from apps.assistant import evidence, retrieval, scoring
from apps.assistant.tests.test_grounding import Chunk

SHOP = [
    Chunk(
        "Bikes",
        "# Our bikes\n\nWe sell commuter, cargo and mountain e-bikes for adults. Every e-bike "
        "comes with a 500 Wh battery.\n\n| Model | Battery | Range |\n|---|---|---|\n"
        "| Harbor City | 500 Wh | 30 to 60 miles |",
        document_id=1,
    ),
    Chunk(
        "Payments",
        "# Payments\n\nWe accept Visa, Mastercard and PayPal. We do not accept cash on delivery, "
        "checks or cryptocurrency. The warranty on the frame lasts 2 years.",
        document_id=2,
        rank=2,
    ),
]


def found(question: str, chunks=SHOP) -> evidence.Evidence:
    return evidence.gather(
        question=question,
        chunks=chunks,
        query_vector=retrieval.encode([question])[0],
        encode=retrieval.encode,
    )


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("Do you sell kids bikes?", ["kids"]),
        ("Can I rent an e-bike for the weekend?", ["rent", "weekend"]),
        ("Are you hiring? How do I apply for a job?", ["hiring", "apply", "job"]),
        # A synonym in the knowledge ("cryptocurrency"), a typo, a compound, a number: not missing.
        ("Can I pay with bitcoin?", []),
        ("how long is the frame warrenty", []),
        ("what battery does an ebike have", []),
        ("I bought 2 bikes, can I pay with PayPal?", []),
    ],
)
def test_question_words_the_knowledge_never_uses_are_missing(question, missing):
    assert (
        evidence.missing_terms(question=question, chunks=SHOP, encode=retrieval.encode) == missing
    )


def test_missing_words_and_a_price_without_an_amount_lower_answerability():
    covered, _ = scoring.answerability(found("Which payment methods do you accept?"))
    uncovered, signals = scoring.answerability(found("Do you accept student discounts for kids?"))
    assert signals["missing"] and uncovered < covered
    assert covered >= scoring.settings.ASSISTANT_ANSWERABILITY_THRESHOLD > uncovered

    price = found("How much does the Harbor City e-bike cost?")
    assert price.wanted_type_found is False  # its row names the battery and range, no price
    score, signals = scoring.answerability(price)
    assert signals["amount_found"] is False
    assert score < scoring.settings.ASSISTANT_ANSWERABILITY_THRESHOLD


def _unit(text: str, position: int, score: float) -> evidence.Unit:
    return evidence.Unit(text, text, 0, "sentence", position, "Changing an order", score=score)


@pytest.mark.parametrize(("gap", "joins"), [(0.39, True), (0.41, False)])
def test_the_sentence_after_the_best_joins_it_within_the_follow_up_margin(gap, joins):
    best = _unit("We cannot add items to an order that has already been placed.", 1, 1.2)
    follow_up = _unit("Place a second order instead.", 2, 1.2 - gap)
    other = _unit("You can cancel an order within 2 hours of placing it.", 4, 1.2 - gap + 0.05)
    found = evidence.Evidence(question="Can I add an item?", chunks=[Chunk("Orders", "")])
    found.units = [best, other, follow_up]
    chosen = [u.plain for u in evidence.select(found)]
    assert chosen == ([best.plain, follow_up.plain] if joins else [best.plain])
