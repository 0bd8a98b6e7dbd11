"""Retrieval metrics (hand-computed values) and the evaluate_retrieval command on a sample."""

from __future__ import annotations

import json
import math
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.knowledge.evaluation import (
    DEFAULT_MODES,
    EvaluationResult,
    dedupe,
    demo_set,
    hit_at_k,
    ndcg_at_k,
    parse_mode,
    reciprocal_rank_at_k,
    score_run,
)
from tests.support.knowledge import knowledge_store  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures"


def test_hit_at_k():
    ranked = ["a", "b", "c", "d"]
    assert hit_at_k(ranked, {"c"}, 1) == 0.0
    assert hit_at_k(ranked, {"c"}, 3) == 1.0
    assert hit_at_k(ranked, {"z"}, 10) == 0.0


def test_reciprocal_rank():
    assert reciprocal_rank_at_k(["a", "b", "c"], {"b", "c"}, 10) == 0.5
    assert reciprocal_rank_at_k(["a", "b", "c"], {"a"}, 10) == 1.0
    assert reciprocal_rank_at_k(["a", "b", "c"], {"c"}, 2) == 0.0


def test_ndcg_by_hand():
    # Gold at ranks 2 and 3 of 3, two gold ids in all:
    # DCG = 1/log2(3) + 1/log2(4) = 0.6309 + 0.5 ; IDCG = 1/log2(2) + 1/log2(3) = 1 + 0.6309
    value = ndcg_at_k(["x", "a", "b"], {"a", "b"}, 10)
    assert value == pytest.approx((1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3)))
    assert value == pytest.approx(0.6934, abs=1e-4)
    # More gold ids than k: the ideal list is capped at k.
    assert ndcg_at_k(["a"], {"a", "b", "c"}, 1) == 1.0
    assert ndcg_at_k([], {"a"}, 10) == 0.0


def test_score_run_averages_and_dedupes():
    run = {"q1": ["a", "a", "b"], "q2": ["x", "y", "z"]}
    qrels = {"q1": {"b"}, "q2": {"z", "w"}}
    metrics = score_run(run, qrels)
    # q1 deduped to [a, b]: hit@1 0, hit@5 1, RR 1/2. q2: gold at rank 3: RR 1/3.
    assert metrics["hit@1"] == 0.0
    assert metrics["hit@5"] == 1.0
    assert metrics["mrr@10"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    ndcg_q1 = (1 / math.log2(3)) / 1.0
    ndcg_q2 = (1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert metrics["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2)
    assert dedupe(["a", "b", "a"]) == ["a", "b"]


@pytest.mark.django_db
@pytest.mark.usefixtures("knowledge_store")
def test_evaluate_retrieval_command_on_the_sample(tmp_path):
    from apps.knowledge.models import Chunk, Source
    from apps.tenants.models import Tenant

    out = StringIO()
    json_path = tmp_path / "result.json"
    call_command(
        "evaluate_retrieval",
        corpus=str(FIXTURES / "stackfaq_sample_corpus.jsonl"),
        questions=str(FIXTURES / "stackfaq_sample_questions.jsonl"),
        json_path=str(json_path),
        stdout=out,
        stderr=StringIO(),
    )
    text = out.getvalue()
    for mode in DEFAULT_MODES:  # hybrid+rerank, hybrid, dense, sparse side by side
        assert f"| {mode} |" in text
    result = json.loads(json_path.read_text())
    assert result["questions"] == 40 and result["corpus"] == 58
    assert list(result["metrics"]) == list(DEFAULT_MODES)
    assert result["config"]["rerank_depth"] == 20
    for mode in DEFAULT_MODES:
        metrics = result["metrics"][mode]
        assert 0.0 <= metrics["mrr@10"] <= metrics["hit@10"] <= 1.0
    # Easy sample (10 topics): every mode that reads the text does well.
    assert result["metrics"]["dense"]["hit@5"] >= 0.9
    assert result["metrics"]["hybrid"]["hit@5"] >= 0.9
    assert result["metrics"]["hybrid+rerank"]["hit@5"] >= 0.9
    # The throw-away tenant is gone, with its rows.
    assert not Tenant.objects.filter(slug__startswith="eval-").exists()
    assert not Source.objects.unscoped().exists()
    assert not Chunk.objects.unscoped().exists()


def test_parse_mode():
    assert parse_mode("hybrid+rerank") == ("hybrid", "", True)
    assert parse_mode("hybrid-rrf") == ("hybrid", "rrf", False)
    assert parse_mode("dense") == ("dense", "", False)


def test_demo_set_pairs_answerable_questions_with_their_article():
    named = demo_set()
    ids = {entry.id for entry in named.corpus}
    assert "warranty.md" in ids and len(named.corpus) == 8
    assert named.questions and all(q.gold_ids <= ids for q in named.questions)
    assert all(len(q.gold_ids) == 1 for q in named.questions)


@pytest.mark.parametrize("modes", ["sparse+rerank", "dense-rrf", "hybrid-max"])
def test_unknown_modes_are_refused(modes):
    with pytest.raises(CommandError, match="unknown mode"):
        call_command("evaluate_retrieval", sets="demo", modes=modes, stdout=StringIO())


@pytest.mark.django_db
@pytest.mark.usefixtures("knowledge_store")
def test_evaluate_retrieval_prints_one_table_per_named_set(tmp_path):
    out = StringIO()
    json_path = tmp_path / "sets.json"
    call_command(
        "evaluate_retrieval",
        sets="demo",
        limit_questions=6,
        modes="hybrid+rerank,dense",
        json_path=str(json_path),
        stdout=out,
        stderr=StringIO(),
    )
    text = out.getvalue()
    assert "demo: 6 questions, 8 corpus entries" in text
    assert "| hybrid+rerank |" in text and "| dense |" in text
    assert "against the better single retriever" not in text  # sparse was not run
    (result,) = json.loads(json_path.read_text())
    assert result["name"] == "demo" and result["questions"] == 6
    assert result["metrics"]["hybrid+rerank"]["hit@5"] >= 0.8


def _result(**hit5_mrr: tuple[float, float]) -> EvaluationResult:
    metrics = {
        mode.replace("_", "+"): {"hit@5": h5, "mrr@10": mrr} for mode, (h5, mrr) in hit5_mrr.items()
    }
    return EvaluationResult(
        metrics=metrics,
        questions=1,
        corpus=1,
        chunks=1,
        ingest_seconds=0,
        search_seconds={},
        config={},
    )


def test_the_default_is_judged_against_the_better_single_retriever():
    line = _result(
        hybrid_rerank=(0.953, 0.837), dense=(0.851, 0.705), sparse=(0.939, 0.803)
    ).against_single()
    assert "hit@5 +1.4 points over sparse, mrr@10 +3.4 points over sparse" in line
    assert line.endswith("goal (>= 3 points each): hit@5 NOT met, mrr@10 met")
    # The better single retriever per metric; a set where one of them reaches 0.97 has no goal.
    line = _result(
        hybrid_rerank=(0.993, 0.937), dense=(0.992, 0.969), sparse=(0.898, 0.790)
    ).against_single()
    assert "hit@5 +0.1 points over dense, mrr@10 -3.2 points over dense" in line
    assert line.endswith("no goal")
    assert _result(hybrid=(0.9, 0.8), dense=(0.8, 0.7)).against_single() == ""
