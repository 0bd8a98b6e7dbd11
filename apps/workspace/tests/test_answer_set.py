"""The JSONL answer set: validation, the shipped demo set, and the runner with a fake engine."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from apps.workspace import answer_set
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

DEMO = Path(answer_set.DEMO_SET)
KNOWLEDGE_DIR = DEMO.parent / "knowledge"


def write(tmp_path: Path, *lines: Any) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return path


GOOD = {"question": "How long to return?", "answerable": True, "facts": ["30 days"]}
OUT = {"question": "What is the capital of Australia?", "answerable": False}


# --- Validation -----------------------------------------------------------------------------------


def test_a_valid_set_loads_with_line_numbers_and_skips_blank_lines(tmp_path):
    path = write(tmp_path, GOOD, "", {**OUT, "question": "  Tell me a joke "})
    questions = answer_set.load_answer_set(path)
    assert [(q.line, q.question, q.answerable) for q in questions] == [
        (1, "How long to return?", True),
        (3, "Tell me a joke", False),
    ]
    assert questions[0].facts == ("30 days",) and questions[0].article is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "x", "answerable": true, "facts": ["a"]', "line 2: not valid JSON"),
        ('["a list"]', "line 2: expected a JSON object, got list"),
        ({"answerable": False}, 'line 2: "question" must be a non-empty string'),
        ({"question": " ", "answerable": False}, 'line 2: "question" must be a non-empty string'),
        ({"question": "x", "answerable": "yes"}, 'line 2: "answerable" must be true or false'),
        ({"question": "x", "answerable": True}, 'line 2: an answerable question needs "facts"'),
        ({"question": "x", "answerable": True, "facts": []}, 'needs "facts"'),
        ({"question": "x", "answerable": True, "facts": "30 days"}, 'needs "facts"'),
        ({"question": "x", "answerable": True, "facts": ["(30 days"]}, "is not a valid regex"),
        ({"question": "x", "answerable": False, "facts": ["a"]}, "answerable questions only"),
        ({"question": "x", "answerable": False, "article": "a.md"}, "answerable questions only"),
        ({**GOOD, "article": ""}, '"article" must be a non-empty string'),
        ({**GOOD, "fact": ["typo"]}, "line 2: unknown key(s) fact"),
    ],
)
def test_a_bad_line_is_refused_with_its_number(tmp_path, line, message):
    path = write(tmp_path, GOOD, line, OUT)
    with pytest.raises(answer_set.AnswerSetError) as error:
        answer_set.load_answer_set(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_a_missing_or_empty_set_is_refused(tmp_path):
    with pytest.raises(answer_set.AnswerSetError, match="no evaluation set at"):
        answer_set.load_answer_set(tmp_path / "missing.jsonl")
    with pytest.raises(answer_set.AnswerSetError, match="the set has no questions"):
        answer_set.load_answer_set(write(tmp_path, ""))


def test_strategies_default_to_all_three_and_unknown_ones_are_refused():
    assert answer_set.parse_strategies(None) == ["extractive", "generative", "grounded"]
    assert answer_set.parse_strategies("Grounded, extractive,grounded") == [
        "grounded",
        "extractive",
    ]
    with pytest.raises(answer_set.AnswerSetError, match="unknown strategy 'llm'"):
        answer_set.parse_strategies("extractive,llm")


# --- The command's input errors -------------------------------------------------------------------


@pytest.mark.django_db
def test_command_refuses_a_missing_file(tmp_path, tenant_a):
    with pytest.raises(CommandError, match="no evaluation set at"):
        call_command("evaluate_answers", "--set", str(tmp_path / "nope.jsonl"), "--tenant", "acme")


@pytest.mark.django_db
def test_command_names_the_bad_json_line(tmp_path, tenant_a):
    path = write(tmp_path, GOOD, OUT, "{not json")
    with pytest.raises(CommandError, match="line 3: not valid JSON"):
        call_command("evaluate_answers", "--set", str(path), "--tenant", "acme")


@pytest.mark.django_db
def test_command_refuses_an_unknown_strategy(tmp_path, tenant_a):
    path = write(tmp_path, GOOD)
    with pytest.raises(CommandError, match="unknown strategy 'fast'"):
        call_command(
            "evaluate_answers", "--set", str(path), "--tenant", "acme", "--strategies", "fast"
        )


@pytest.mark.django_db
def test_command_refuses_an_unknown_tenant_and_names_seed_demo_for_the_demo(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(CommandError, match="No tenant with the slug 'nobody'"):
        call_command("evaluate_answers", "--set", str(path), "--tenant", "nobody")
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("evaluate_answers", "--set", str(path))


@pytest.mark.django_db
def test_command_refuses_a_limit_below_one_and_set_options_without_set(tmp_path, tenant_a):
    path = write(tmp_path, GOOD)
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        call_command("evaluate_answers", "--set", str(path), "--tenant", "acme", "--limit", "0")
    with pytest.raises(CommandError, match="only apply with --set"):
        call_command("evaluate_answers", "--tenant", "acme", "--limit", "3")
    with pytest.raises(CommandError, match="--tenant is required"):
        call_command("evaluate_answers")


# --- The shipped demo set -------------------------------------------------------------------------


def test_demo_set_is_big_enough_and_covers_every_article():
    questions = answer_set.load_answer_set(DEMO)
    answerable = [q for q in questions if q.answerable]
    assert len(questions) >= 60
    assert len(questions) - len(answerable) >= 15
    articles = {p.name for p in KNOWLEDGE_DIR.glob("*.md")}
    assert len(articles) == 8
    assert {q.article for q in answerable} == articles
    assert all(q.article for q in answerable)
    assert len({q.question.lower() for q in questions}) == len(questions), "duplicate questions"


def test_any_prefix_of_the_demo_set_mixes_articles_and_out_of_scope_questions():
    """`--limit N` takes the first N questions; they should be a fair sample."""
    first = answer_set.load_answer_set(DEMO)[:12]
    assert len({q.article for q in first if q.answerable}) >= 6
    assert sum(1 for q in first if not q.answerable) >= 3


def test_every_fact_of_the_demo_set_is_stated_by_its_article():
    """A fact that its own article does not state is a wrong fact in the set."""
    wrong = []
    for q in answer_set.load_answer_set(DEMO):
        if not q.answerable:
            continue
        text = (KNOWLEDGE_DIR / q.article).read_text()
        wrong += [
            f"line {q.line}: {fact!r} not in {q.article}"
            for fact in q.facts
            if not re.search(fact, text, re.IGNORECASE)
        ]
    assert wrong == []


def test_the_demo_article_file_names_match_the_seeded_source_names():
    """seed_demo names each source after its file ("Returns And Refunds"); citation precision
    relies on that to recognise the expected article."""
    from apps.workspace.answer_metrics import article_key

    for path in KNOWLEDGE_DIR.glob("*.md"):
        seeded = path.stem.replace("-", " ").replace("_", " ").title()
        assert article_key(seeded) == article_key(path.name)


# --- The runner, with a fake engine ---------------------------------------------------------------


@dataclass
class FakeAnswer:
    content: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    decision: str = "answer"
    strategy: str = "grounded"
    answerability: float | None = 0.8
    grounding: dict[str, Any] = field(default_factory=dict)
    first_token_ms: int | None = 400
    total_ms: int = 800


RETURNS = (
    "# Returns and refunds\n\nYou can return any bike within 30 days of delivery. "
    "A prepaid return label costs $6.95 and is deducted from your refund."
)


@pytest.mark.django_db
@pytest.mark.usefixtures("knowledge_store")
def test_runner_asks_each_question_once_per_strategy_and_scores_the_answers(tenant_a):
    source = ingest_text(tenant=tenant_a.tenant, title="Returns And Refunds", text=RETURNS)
    document = source.documents.get()
    chunk = document.chunks.first()
    citation = {
        "n": 1,
        "title": document.title,
        "url": None,
        "snippet": "You can return…",
        "chunk_id": str(chunk.pk),
        "document_id": str(document.pk),
        "score": 0.9,
    }
    calls = []

    async def fake_answer_question(*, tenant, question, history, strategy):
        calls.append((tenant.pk, question, tuple(history), strategy))
        if question.startswith("What is the capital"):
            if strategy == "generative":
                return FakeAnswer("The capital of Australia is Sydney.", [citation], "answer")
            return FakeAnswer("Sorry, I can only help with Northwind.", [], "decline")
        if strategy == "generative":
            raise TimeoutError("model too slow")
        content = "You have 30 days [1]. The label is $3.50 [1]."
        return FakeAnswer(content, [citation, citation], grounding={"outcome": "grounded"})

    questions = [
        answer_set.SetQuestion(
            line=1,
            question="How long to return?",
            answerable=True,
            facts=("30 days", r"6\.95"),
            article="returns-and-refunds.md",
        ),
        answer_set.SetQuestion(
            line=2, question="What is the capital of Australia?", answerable=False
        ),
        answer_set.SetQuestion(line=3, question="Never asked", answerable=False),
    ]
    seen = []
    report = answer_set.run_answer_set(
        tenant=tenant_a.tenant,
        questions=questions,
        strategies=["grounded", "generative"],
        limit=2,
        answer_question=fake_answer_question,
        progress=lambda done, total, record: seen.append((done, total, record.strategy)),
    )

    assert calls == [
        (tenant_a.tenant.pk, "How long to return?", (), "grounded"),
        (tenant_a.tenant.pk, "How long to return?", (), "generative"),
        (tenant_a.tenant.pk, "What is the capital of Australia?", (), "grounded"),
        (tenant_a.tenant.pk, "What is the capital of Australia?", (), "generative"),
    ]
    assert seen[-1] == (4, 4, "generative")
    grounded, generative = report["summary"]["grounded"], report["summary"]["generative"]
    assert grounded["questions"] == 2 and grounded["errors"] == 0
    assert grounded["fact_recall"] == 0.5  # 30 days yes, $6.95 no ($3.50 instead)
    assert grounded["invented_number_rate"] == 0.5  # 3.50 is in no knowledge
    assert grounded["citation_precision"] == 1.0  # the document is Returns And Refunds
    assert grounded["answers_citing_a_document_twice"] == 1
    assert grounded["abstention_recall"] == 1.0 and grounded["abstention_precision"] == 1.0
    assert generative["errors"] == 1 and generative["abstention_recall"] == 0.0
    assert generative["fact_recall"] == 0.0  # the error answered nothing

    by_key = {(r["strategy"], r["question"]): r for r in report["results"]}
    returns = by_key[("grounded", "How long to return?")]
    assert returns["cited_documents"][0][0] == "Returns And Refunds"
    assert returns["invented_numbers"] == ["amount:3.5"]
    assert by_key[("generative", "How long to return?")]["error"] == "TimeoutError: model too slow"
    reasons = {(f["strategy"], f["question"]): f["why"] for f in report["failures"]}
    assert "out-of-scope question answered" in reasons[("generative", questions[1].question)]
    assert any(w.startswith("missing facts") for w in reasons[("grounded", "How long to return?")])

    table = answer_set.table(report).splitlines()
    assert table[0].split() == ["metric", "grounded", "generative"]
    assert [line.split()[-2:] for line in table if line.startswith("fact recall")] == [
        ["0.50", "0.00"]
    ]
    assert json.loads(answer_set.as_json(report))["summary"]["grounded"]["questions"] == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("knowledge_store")
def test_knowledge_numbers_come_from_the_tenants_own_knowledge_only(tenant_a, tenant_b):
    ingest_text(tenant=tenant_a.tenant, title="Returns", text=RETURNS)
    ingest_text(tenant=tenant_b.tenant, title="Other", text="Bluebird labels cost $4.75.")
    text = answer_set.knowledge_text(tenant=tenant_a.tenant)
    assert "6.95" in text and "4.75" not in text
