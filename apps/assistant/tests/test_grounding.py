"""The groundedness guard, evidence selection and the scope rules, as pure logic.

The guard's embedding check is exercised with the real MiniLM encoder (the one the chat uses);
the lexical, fact and repetition checks need no model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pytest

from apps.assistant import answer_text, evidence, facts, grounding, scope

SOURCES = [
    "Part: Frame and rigid fork; Warranty period: 2 years",
    "Part: Battery; Warranty period: 1 year or 500 full charge cycles, whichever comes first",
    "In other words, the frame is covered for 2 years, and the battery is covered for 1 year.",
    "**Prepaid label** for parts and accessories: $6.95, deducted from your refund.",
    "You have **30 days** from the day your order is delivered to return it.",
    "Email support@northwind-bikes.example or call +1 (503) 555-0142, Monday to Friday.",
    "Track your order at https://northwind-bikes.example/track with your order number.",
    "A full charge from empty takes about 5 hours with the supplied charger.",
]


def verdict(sentence: str, sources: list[str] = SOURCES, **kwargs) -> grounding.Verdict:
    """A new guard's verdict on `sentence` (no earlier sentences of the answer)."""
    return grounding.Guard(sources=sources, **kwargs).check(sentence)


@pytest.mark.parametrize(
    ("sentence", "detail"),
    [
        ("The prepaid label costs $3.50.", "3.5"),
        ("Our CEO earns $235,000 a year.", "235000"),
        ("Call us at +1 (503) 555-0199.", "15035550199"),
        ("Write to help@northwind-support.example for a refund.", "help@northwind-support.example"),
        ("Log in at https://evil.example/login to start a return.", "evil.example/login"),
        ("You have 45 days to return your bike.", "45"),
        ("A full charge takes two hours.", "2"),
        # A real number, said of the wrong thing: 2 years is the frame's warranty.
        ("The battery warranty lasts 2 years.", "said of something else: 2"),
    ],
)
def test_guard_rejects_each_kind_of_invented_fact(sentence, detail):
    result = verdict(sentence)
    assert not result.ok
    assert result.reason == "invented_fact"
    assert detail in result.detail


@pytest.mark.parametrize(
    "sentence",
    [
        "The frame is covered for 2 years.",
        "The battery is covered for one year or 500 cycles.",
        "The prepaid return label costs 6.95 USD.",
        "You have thirty days to return your bike.",
        "Call us at 503-555-0142.",
        "Email support@northwind-bikes.example for help.",
        "You can track it at northwind-bikes.example/track.",
        "A full charge takes about five hours.",
    ],
)
def test_guard_accepts_paraphrases_of_real_facts(sentence):
    result = verdict(sentence)
    assert result.ok, result


def test_guard_rejects_a_claim_no_source_supports():
    result = verdict("Northwind bikes are assembled by hand in Oslo by retired astronauts.")
    assert not result.ok and result.reason == "unsupported"


def test_guard_strips_markup_and_flags_what_is_left():
    text = 'See <script src="https://x.example/a.js"></script>the <b>label</b> &lt;i&gt;now'
    assert answer_text.strip_markup(text) == "See the label now"
    assert not answer_text.has_markup(answer_text.strip_markup("<|im_end|></p>Hi<br/>"))
    assert verdict("Click <a href='https://x.example'>here</a>.").reason == "markup"


def test_guard_cuts_repetition_loops_and_repeated_sentences():
    guard = grounding.Guard(sources=SOURCES)
    assert guard.check("The frame is covered for 2 years.").ok
    again = guard.check("The frame is covered for 2 years, yes.")
    assert not again.ok and again.reason == "repetition"
    loop = grounding.Guard(sources=SOURCES).check(
        "The battery is covered, the battery is covered, the battery is covered for 1 year."
    )
    assert not loop.ok and loop.reason == "repetition"


def test_guard_treats_an_admission_of_not_knowing_as_a_failed_answer():
    result = verdict("I don't know how long the frame warranty lasts.")
    assert not result.ok and result.reason == "refusal"


def test_guard_uses_embedding_similarity_for_paraphrases():
    from apps.assistant.retrieval import encode

    guard = grounding.Guard(sources=SOURCES, embed=encode)
    result = guard.check("Charging a flat battery completely needs roughly five hours.")
    assert result.ok, result
    assert result.cosine >= grounding.SUPPORT_COSINE or result.lexical >= 0.5


def test_a_duration_keeps_its_unit():
    weeks = verdict("You have 30 weeks from the day your order is delivered to return it.")
    assert not weeks.ok and weeks.detail == "30 weeks where the facts say 30 days"
    assert verdict("You have 30 days from the day your order is delivered to return it.").ok
    assert verdict("You have thirty days from the day your order is delivered to return it.").ok


def test_business_days_and_days_are_different_facts():
    sources = [
        "Refunds reach your card within 7 business days after the bike arrives.",
        "Standard delivery takes 3 to 5 days.",
    ]
    check = functools.partial(verdict, sources=sources)
    refused = check("Refunds reach your card within 7 days after the bike arrives.")
    assert not refused.ok and refused.reason == "invented_fact"
    assert refused.detail == "7 days where the facts say 7 business days"
    wrong = check("Standard delivery takes 5 business days.")
    assert not wrong.ok and wrong.detail == "5 business days where the facts say 5 days"
    # The kind the source names passes, in words or digits, "working" counting as business.
    assert check("Refunds reach your card within 7 business days after the bike arrives.").ok
    assert check("Refunds reach your card within seven working days after the bike arrives.").ok
    assert check("Standard delivery takes 3 to 5 days.").ok


def test_one_end_of_a_range_is_not_a_fact():
    sources = [
        "What you ordered: Any order to Alaska or Hawaii; Delivery time after shipping: "
        "6 to 9 business days; Price: $149 surcharge per e-bike",
        "Gift cards are available from $25 to $1,000 and never expire.",
    ]
    check = functools.partial(verdict, sources=sources)
    # The small model wrote this for the demo's Alaska row: true of no order.
    low = check("Orders to Alaska or Hawaii arrive 6 business days after shipping.")
    assert not low.ok and low.reason == "invented_fact"
    assert low.detail == "one end of 6 to 9"
    high = check("Gift cards are available for $1,000.")
    assert not high.ok and high.detail == "one end of 25 to 1000"
    # The whole range passes, in digits or words, and so does a number stated on its own.
    assert check("Orders to Alaska or Hawaii arrive 6 to 9 business days after shipping.").ok
    assert check("Orders to Alaska or Hawaii arrive six to nine business days after shipping.").ok
    assert check("Gift cards are available from $25 to $1,000 and never expire.").ok
    assert check("Orders to Alaska or Hawaii pay a $149 surcharge per e-bike.").ok


def test_number_ranges_reads_each_way_of_writing_a_range():
    read = facts.number_ranges("Standard delivery takes 3-5 days, express between 1 and 2 days.")
    assert read.ends == {"3": {("3", "5")}, "5": {("3", "5")}, "1": {("1", "2")}, "2": {("1", "2")}}
    assert facts.number_ranges("Prices go from 10 % to 20 %.").ends["20"] == {("10", "20")}
    # Phone numbers and opening hours are not ranges; a lone number is kept as such.
    hours = facts.number_ranges("Call +1 (503) 555-0142, Monday to Friday 8:00 to 18:00, 2 lines.")
    assert hours.ends == {} and hours.alone == {"2"}


def test_a_condition_must_come_from_the_fact_it_is_attached_to():
    sources = [
        "Express shipping is available for parts and accessories only.",
        "**Prepaid label** for parts and accessories: $6.95, deducted from your refund.",
        "You can cancel or change your order yourself within 2 hours of placing it, as long as "
        "its status is still Received. Once an order has shipped, it can no longer be canceled.",
    ]
    check = functools.partial(verdict, sources=sources)
    # The small model added this condition to a true statement (demo set, express shipping).
    added = check(
        "Express shipping is available for parts and accessories, "
        "but only if you have a prepaid label."
    )
    assert not added.ok and added.reason == "unsupported"
    assert added.detail == "a condition its fact does not state: only if you have a prepaid label."
    assert check("Express shipping is available for parts and accessories only.").ok
    # A condition its own fact states passes, as does one from the same source's next sentence.
    assert check(
        "You can cancel your order within 2 hours of placing it, as long as its status is "
        "still Received."
    ).ok
    assert check(
        "If your order has already shipped, it can no longer be canceled.",
        question="My order has already shipped, can I still cancel it?",
    ).ok
    moved = check("You can cancel your order within 2 hours of placing it, unless it is express.")
    assert not moved.ok and "unless it is express" in moved.detail


def test_a_phrase_spliced_in_from_another_fact_is_unsupported():
    sources = [
        "If the box is visibly damaged, note it on the delivery receipt before you sign. Report "
        "any damage or missing item within 48 hours of delivery by emailing photos of the box, "
        "the label and the damage to support@northwind-bikes.example.",
        "After three failed attempts the bike is held at the carrier's local depot for five "
        "business days before it is returned to us.",
    ]
    question = "My bike box arrived damaged. How long do I have to report it?"

    check = functools.partial(verdict, sources=sources, question=question)
    # The small model wrote this (demo set): the photos go to support, not to the depot.
    spliced = check(
        "You can report your bike box damaged within 48 hours of delivery by emailing photos "
        "to the carrier's local depot."
    )
    assert not spliced.ok and spliced.reason == "unsupported"
    assert spliced.detail == "words from another fact: carrier, depot, local"
    assert check(
        "Report any damage within 48 hours of delivery by emailing photos of the box to "
        "support@northwind-bikes.example."
    ).ok
    # Two facts in one sentence, each clause from its own fact, pass.
    assert check(
        "Report any damage within 48 hours of delivery by emailing photos of the box, and after "
        "three failed delivery attempts the bike is held at the carrier's local depot."
    ).ok


def test_each_clause_keeps_its_numbers_with_its_own_subject():
    from apps.assistant.retrieval import encode

    # The small model swapped the demo's two warranties in one sentence; each clause alone is
    # about the wrong part, though the sentence names both parts.
    swapped = grounding.Guard(sources=SOURCES, embed=encode).check(
        "The battery warranty covers 2 years, and the frame is covered for 1 year or 500 full "
        "charge cycles."
    )
    assert not swapped.ok and swapped.reason == "invented_fact"
    assert swapped.detail == "said of something else: 2"
    assert (
        grounding.Guard(sources=SOURCES, embed=encode)
        .check("The frame warranty covers 2 years, and the battery is covered for 1 year.")
        .ok
    )


@pytest.mark.parametrize(
    "sentence",
    [
        "The answer is: Yes, it does cost something.",
        "The short answer is no, it is free.",
        "The answer to your question is no, the order cannot be changed.",
    ],
)
def test_a_verdict_after_a_colon_is_still_a_verdict(sentence):
    result = verdict(sentence)
    assert not result.ok and result.reason == "unsupported"
    assert result.detail == "a yes/no verdict no fact states"


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        (
            "My bike box arrived damaged. How long do I have to report it?",
            "Your bike box arrived damaged.",
        ),
        (
            "The tracking for my bike hasn't changed in 4 days, what should I do?",
            "The tracking for your bike has not changed in 4 days.",
        ),
        (
            "When is my card actually charged for an order?",
            "When is my card actually charged for an order?",
        ),
        (
            "My battery only holds about 60% of its capacity after 8 months, a warranty case?",
            "A battery only holds about 60% of its capacity after 8 months, a warranty case?",
        ),
    ],
)
def test_a_sentence_that_only_repeats_the_question_is_not_an_answer(question, sentence):
    result = verdict(sentence, question=question)
    assert not result.ok and result.reason == "unsupported"
    assert result.detail == "repeats the customer's question"


def test_an_answer_may_reuse_the_questions_words():
    question = "Do I need to register my bike for the warranty to be valid?"
    sources = ["You don't need to register your bike: the warranty is valid from the receipt."]
    guard = grounding.Guard(sources=sources, question=question)
    # A yes/no answer is the question's words with the other polarity.
    assert guard.check("You don't need to register your bike for the warranty.").ok
    assert verdict(
        "The frame is covered for 2 years.", question="How long is the frame covered?"
    ).ok


def test_a_list_number_stays_with_its_item():
    assert answer_text.split_sentences("1.\nPart: Frame.\n2. Part: Battery.") == [
        "1. Part: Frame.",
        "2. Part: Battery.",
    ]
    # While streaming, a list number at the end of a line waits for its item.
    assert answer_text.complete_sentences("Here they are.\n1.\n") == (["Here they are."], "1.\n")


def test_with_a_focus_only_the_answering_evidences_facts_may_be_stated():
    sources = [
        "You have 30 days from the day your order is delivered to return it.",
        "We inspect every return within 2 business days of receiving it.",
        "Portland: 1420 NW Lovejoy Street, phone +1 (503) 555-0150.",
        "Seattle: 88 Elliott Avenue West, phone +1 (206) 555-0177.",
    ]

    def check(sentence: str, focus: list[str], question: str) -> grounding.Verdict:
        return verdict(sentence, sources, question=question, focus=focus)

    returns = "How long do I have to return my e-bike?"
    # The small model answered with the inspection's number (demo set).
    wrong = check("You can return your e-bike within 2 business days.", sources[:1], returns)
    assert not wrong.ok and wrong.reason == "invented_fact"
    assert wrong.detail == "a fact of other evidence: 2"
    assert check("You can return your order within 30 days of delivery.", sources[:1], returns).ok
    seattle = "What's the phone number of the Seattle service center?"
    portland = check("Call the Seattle service center at 503-555-0150.", sources[3:], seattle)
    assert not portland.ok and portland.detail == "a fact of other evidence: 5035550150"
    # Without a focus, any source's fact may be stated (the inspection's 2 days is real).
    assert (
        grounding.Guard(sources=sources)
        .check("We inspect every return within 2 business days of receiving it.")
        .ok
    )


def test_a_quoted_label_must_be_in_the_facts():
    sources = ["Go to **Account > Privacy** and choose **Delete account**, then confirm."]
    question = "How do I delete my Northwind account?"

    check = functools.partial(verdict, sources=sources, question=question)
    # The small model invented the menu (demo set).
    invented = check(
        "Go to your account and click on \u201cPrivacy & Deletion\u201d, then confirm."
    )
    assert not invented.ok and invented.reason == "invented_fact"
    assert invented.detail == 'a label no fact has: "Privacy & Deletion"'
    assert check('Go to Account > Privacy, choose "Delete Account" and confirm.').ok


def test_a_short_echo_of_the_question_is_not_shown_as_filler():
    question = "I forgot my password. How long is the reset link valid?"
    result = verdict("I forgot my password.", question=question)
    assert not result.ok and result.detail == "repeats the customer's question"
    assert verdict("Sure!", question=question).ok


def test_open_where_the_facts_say_closed_is_a_contradiction():
    from apps.assistant.retrieval import encode

    sources = [
        "All three service centers are open Tuesday to Friday 9:00 to 18:00 and Saturday 9:00 "
        "to 16:00.",
        "They are closed on Sundays, Mondays and US public holidays.",
    ]
    check = functools.partial(
        verdict, sources=sources, question="Are you open on Mondays?", embed=encode
    )
    # The small model turned the customer's question into a claim (demo set).
    opened = check("They are open on Sundays, Mondays and US public holidays.")
    assert not opened.ok and opened.reason == "contradiction"
    assert check("The service centers are closed on Mondays and US public holidays.").ok
    # A day the supporting fact does not name is not a fact about that day.
    monday = check("The service centers are open on Mondays and US public holidays.")
    assert not monday.ok and monday.detail == "a day its fact does not name: holiday, monday"
    sunday = check("The service centers are open Tuesday to Friday and on Sundays.")
    assert not sunday.ok and sunday.detail == "a day its fact does not name: sunday"
    assert check("The service centers are open Tuesday to Friday 9:00 to 18:00.").ok


def test_numbers_from_the_question_may_be_repeated():
    question = "Where is my order NW-482913?"
    assert verdict("Your order NW-482913 can be tracked online.", question=question).reason != (
        "invented_fact"
    )


def test_sentences_split_at_boundaries_not_at_amounts_or_abbreviations():
    text = "The label is $6.95, e.g. for parts. Refunds take 7 days [1]. Done!\n- item one\n- two"
    assert answer_text.split_sentences(text) == [
        "The label is $6.95, e.g. for parts.",
        "Refunds take 7 days [1].",
        "Done!",
        "- item one",
        "- two",
    ]
    done, rest = answer_text.complete_sentences("First one [1]. Second is still com")
    assert done == ["First one [1]."] and rest == "Second is still com"


# --- Evidence ------------------------------------------------------------------------------------


@dataclass
class Chunk:
    title: str
    text: str
    url: str = ""
    heading_path: list[str] = field(default_factory=list)
    chunk_id: int = 1
    document_id: int = 1
    score: float = 0.5
    rank: int = 1


def test_units_split_sentences_list_items_whole_lists_and_table_rows():
    chunk = Chunk(
        "Payments",
        "# Payments\n\nWe accept these methods:\n\n- Visa\n- PayPal\n\n"
        "| Part | Period |\n|---|---|\n| Frame | 2 years |\n\n"
        "This article explains payments. Invoices are emailed. Ask us anything.",
    )
    units = evidence.units_of(chunk, 0)
    kinds = [(u.kind, u.plain) for u in units]
    assert ("item", "Visa") in kinds and ("item", "PayPal") in kinds
    assert ("list", "We accept these methods: - Visa - PayPal") in kinds
    assert ("row", "Part: Frame; Period: 2 years") in kinds
    assert ("sentence", "Invoices are emailed.") in kinds
    # Sentences about the article itself are never an answer.
    assert not any("This article" in u.plain for u in units)


def test_extractive_selection_answers_with_the_sentence_holding_the_fact():
    from apps.assistant.retrieval import encode

    chunks = [
        Chunk(
            "Returns",
            "# Returns\n\n## The return period\n\nYou have **30 days** from delivery to return it. "
            "The period is the same for all items.\n\n## Refunds\n\nIf a returned bike was ridden "
            "more than 50 miles, we contact you first. Refunds take 7 business days.",
            document_id=1,
        ),
        Chunk("Shipping", "# Shipping\n\nStandard delivery takes 3 to 5 days.", document_id=2),
    ]
    question = "How long do I have to return my bike?"
    found = evidence.gather(
        question=question, chunks=chunks, query_vector=encode([question])[0], encode=encode
    )
    chosen = evidence.select(found)
    assert 1 <= len(chosen) <= evidence.EXTRACTIVE_MAX_UNITS
    assert any("30 days" in u.plain for u in chosen), [u.plain for u in chosen]


def test_links_to_hosts_the_tenant_does_not_trust_are_not_clickable():
    text = "Reset it [here](https://evil.example/reset) or at https://acme.example.com/reset."
    safe = evidence.defuse_links(text, trusted_hosts={"acme.example.com"})
    assert "](https://evil.example" not in safe and "`https://evil.example/reset`" in safe
    assert "https://acme.example.com/reset" in safe and "`https://acme" not in safe


# --- Scope ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Hi!", "greeting"),
        ("good morning", "greeting"),
        ("thanks a lot!", "thanks"),
        ("Write a poem about bikes", "off_topic"),
        ("What is the capital of Australia?", "off_topic"),
        ("who is the president of France", "off_topic"),
        ("what is 17 * 23?", "off_topic"),
        ("Can you write python code to sort a list?", "off_topic"),
        ("How long do I have to return my bike?", ""),
        ("Hi, where is my order NW-482913?", ""),
        ("What is the price of the battery?", ""),
    ],
)
def test_scope_sorts_chit_chat_and_off_topic_requests_from_questions(message, kind):
    assert scope.classify(message) == kind


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        # A yes/no verdict that no fact states, even about something real.
        ("Yes, you can return it within 30 days.", "unsupported"),
        ("The answer is no, the frame is covered for 2 years.", "unsupported"),
        # The fact as it is, and said the opposite way.
        ("You can return it within 30 days from the day your order is delivered.", ""),
        ("Returns are not possible within 30 days of delivery.", "contradiction"),
        # A template placeholder and words no fact uses (how small models invent).
        ("Track your order at [tracking link] with your order number.", "invented_fact"),
        ("Download the Northwind app from our website to track your order.", "unsupported"),
    ],
)
def test_guard_rejects_verdicts_contradictions_placeholders_and_new_words(sentence, reason):
    result = verdict(sentence, embed=_encode())
    if reason:
        assert not result.ok and result.reason == reason, result
    else:
        assert result.ok, result


def _encode():
    from apps.assistant.retrieval import encode

    return encode
