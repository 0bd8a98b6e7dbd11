"""`manage.py evaluate_answers --set` end to end: the seeded demo tenant (real ingestion), the
real answer engine and the real local LLM server.

The 135M test model's answers are weak; this checks the plumbing (every question asked with
every strategy, answers scored, citations resolved to the demo articles, the report printed),
never the quality of an answer: the metrics themselves are unit-tested with fixed answers.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.knowledge.models import Source
from apps.tenants.models import Tenant
from apps.workspace import answer_set
from apps.workspace.answer_metrics import article_key
from tests.support.knowledge import knowledge_store  # noqa: F401
from tests.support.llm import llm_server, llm_settings  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    # The model shares two cores with everything else; slow is not wrong here.
    pytest.mark.timeout(1800),
    pytest.mark.usefixtures("knowledge_store", "llm_settings"),
]

ARTICLES = {article_key(p.name) for p in (answer_set.DEMO_SET.parent / "knowledge").glob("*.md")}


@pytest.fixture
def demo_tenant(settings, tmp_path) -> Iterator[Tenant]:
    """`manage.py seed_demo`, with the ingestion tasks it queues run in-process."""
    from supportai.celery import app

    settings.DATA_DIR = tmp_path / "data"
    previous = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    try:
        call_command("seed_demo", stdout=io.StringIO())
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous
    tenant = Tenant.objects.get(slug=answer_set.DEMO_TENANT)
    sources = Source.objects.for_tenant(tenant)
    assert sources.count() == 8
    assert set(sources.values_list("status", flat=True)) == {Source.Status.SYNCED}
    yield tenant


def small_set(tmp_path: Path) -> Path:
    """Two answerable questions and one out of scope from the demo set, then one more that
    `--limit 3` must leave out."""
    questions = [json.loads(line) for line in answer_set.DEMO_SET.read_text().splitlines()]
    answerable = [q for q in questions if q["answerable"]]
    out_of_scope = [q for q in questions if not q["answerable"]]
    chosen = [answerable[0], out_of_scope[0], answerable[-1], out_of_scope[1]]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in chosen))
    return path


def test_evaluate_answers_runs_the_set_through_every_strategy(demo_tenant, tmp_path, capsys):
    path = small_set(tmp_path)
    call_command("evaluate_answers", "--set", str(path), "--limit", "3", "--json")
    report = json.loads(capsys.readouterr().out)

    assert report["tenant"] == "northwind"
    assert report["strategies"] == ["extractive", "generative", "grounded"]
    asked = [json.loads(line)["question"] for line in path.read_text().splitlines()][:3]
    for strategy in report["strategies"]:
        summary = report["summary"][strategy]
        assert (summary["questions"], summary["answerable"], summary["out_of_scope"]) == (3, 2, 1)
        assert summary["errors"] == 0, report["failures"]
        results = [r for r in report["results"] if r["strategy"] == strategy]
        assert [r["question"] for r in results] == asked
        for result in results:
            assert result["decision"], result
            assert isinstance(result["total_ms"], int) and result["total_ms"] >= 0
            assert result["content"].strip() or result["declined"], result
    # Citations resolve to the seeded sources: every cited document is one of the 8 articles.
    cited = [names for r in report["results"] for names in r["cited_documents"]]
    assert cited, "no answer cited anything"
    assert all(ARTICLES & {article_key(name) for name in names} for names in cited), cited
    extractive = [r for r in report["results"] if r["strategy"] == "extractive" and r["answerable"]]
    assert all(r["citation_precision"] is not None for r in extractive if not r["declined"])
    # The first token of a streamed answer is timed.
    streamed = [
        r
        for r in report["results"]
        if r["strategy"] in {"generative", "grounded"}
        and r["outcome"] in {"generative", "grounded"}
    ]
    assert all(r["first_token_ms"] is not None for r in streamed)


def test_evaluate_answers_prints_the_table_and_the_failures(demo_tenant, tmp_path, capsys):
    path = small_set(tmp_path)
    call_command(
        "evaluate_answers", "--set", str(path), "--strategies", "extractive", "--limit", "2"
    )
    out = capsys.readouterr().out
    assert "on tenant northwind: 2 question(s) per strategy" in out
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "extractive"]
    for label in ("fact recall", "invented-number rate", "abstention recall", "TTFT p95 (ms)"):
        assert any(line.startswith(label) for line in out.splitlines()), label
    assert "Failures (" in out
