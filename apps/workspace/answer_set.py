"""Running a JSONL evaluation set through the answer engine (`manage.py evaluate_answers --set`).

Each line of a set is one question:

    {"question": "...", "answerable": true, "facts": ["\\$6\\.95", "30 days"],
     "article": "returns-and-refunds.md"}
    {"question": "What is the capital of Australia?", "answerable": false}

`facts` (regexes, case-insensitive, that the answer must state) and the optional `article` (the
document the answer should cite: a file, source or document name) belong to answerable
questions only. Every question is asked once per strategy, each time as a fresh conversation,
through `apps.assistant.engine.answer_question`: the chat's own retrieval, decision, model and
guard against the tenant's real knowledge and the configured LLM server. The answers are scored
with `apps.workspace.answer_metrics`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async

from apps.assistant.engine import answer_question
from apps.knowledge.models import Chunk, Document
from apps.tenants.models import Tenant
from apps.workspace import answer_metrics as metrics
from apps.workspace import answer_numbers
from apps.workspace.models import CuratedAnswer

STRATEGIES = ("extractive", "generative", "grounded")
DEMO_SET = Path(__file__).resolve().parents[1] / "tenants" / "demo" / "answers.jsonl"
DEMO_TENANT = "northwind"  # the slug `manage.py seed_demo` gives the demo tenant

_KEYS = {"question", "answerable", "facts", "article"}


class AnswerSetError(ValueError):
    """An evaluation set or an option that cannot be used, with a message saying why."""


@dataclass(frozen=True)
class SetQuestion:
    line: int
    question: str
    answerable: bool
    facts: tuple[str, ...] = ()
    article: str | None = None


def _question(line: int, value: Any) -> SetQuestion:
    where = f"line {line}"
    if not isinstance(value, dict):
        raise AnswerSetError(f"{where}: expected a JSON object, got {type(value).__name__}.")
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise AnswerSetError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_KEYS))})."
        )
    question = value.get("question")
    if not isinstance(question, str) or not question.strip():
        raise AnswerSetError(f'{where}: "question" must be a non-empty string.')
    answerable = value.get("answerable")
    if not isinstance(answerable, bool):
        raise AnswerSetError(f'{where}: "answerable" must be true or false.')
    facts = value.get("facts")
    article = value.get("article")
    if not answerable:
        if facts or article:
            raise AnswerSetError(
                f'{where}: "facts" and "article" belong to answerable questions only.'
            )
        return SetQuestion(line=line, question=question.strip(), answerable=False)
    if not isinstance(facts, list) or not facts or not all(isinstance(f, str) and f for f in facts):
        raise AnswerSetError(
            f'{where}: an answerable question needs "facts", a non-empty list of regexes.'
        )
    for fact in facts:
        try:
            re.compile(fact)
        except re.error as exc:
            raise AnswerSetError(
                f"{where}: the fact {fact!r} is not a valid regex ({exc})."
            ) from exc
    if article is not None and (not isinstance(article, str) or not article.strip()):
        raise AnswerSetError(f'{where}: "article" must be a non-empty string when given.')
    return SetQuestion(
        line=line,
        question=question.strip(),
        answerable=True,
        facts=tuple(facts),
        article=article.strip() if article else None,
    )


def parse_answer_set(lines: Iterable[str]) -> list[SetQuestion]:
    """The questions of a JSONL set; blank lines are skipped. Raises AnswerSetError."""
    questions = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise AnswerSetError(f"line {number}: not valid JSON ({exc.msg}).") from exc
        questions.append(_question(number, value))
    if not questions:
        raise AnswerSetError("the set has no questions.")
    return questions


def load_answer_set(path: str | Path) -> list[SetQuestion]:
    path = Path(path)
    if not path.is_file():
        raise AnswerSetError(f"no evaluation set at {path}.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnswerSetError(f"cannot read {path}: {exc}.") from exc
    try:
        return parse_answer_set(text.splitlines())
    except AnswerSetError as exc:
        raise AnswerSetError(f"{path}: {exc}") from exc


def parse_strategies(value: str | None) -> list[str]:
    """ "extractive,grounded" → ["extractive", "grounded"]; all three when empty."""
    if not value or not value.strip():
        return list(STRATEGIES)
    chosen = []
    for name in (part.strip().lower() for part in value.split(",")):
        if name not in STRATEGIES:
            raise AnswerSetError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}.")
        if name not in chosen:
            chosen.append(name)
    return chosen


# --------------------------------------------------------------------------- the tenant's knowledge


def knowledge_text(*, tenant: Tenant) -> str:
    """Everything the tenant's answers may draw on: indexed chunks, titles, curated answers."""
    parts = list(
        Chunk.objects.for_tenant(tenant).values_list("text", flat=True).distinct().iterator()
    )
    parts += list(Document.objects.for_tenant(tenant).values_list("title", flat=True))
    for question, answer in CuratedAnswer.objects.for_tenant(tenant).values_list(
        "question", "answer"
    ):
        parts += [question, answer]
    return "\n".join(parts)


def _int_ids(values: Iterable[Any]) -> set[int]:
    return {int(v) for v in values if str(v).isdigit()}


def cited_sources(
    *, tenant: Tenant, citations: Sequence[dict[str, Any]]
) -> tuple[list[list[str]], str]:
    """(for each distinct cited document, the names it goes by; the cited documents' text).

    Names are the source's name, the document's title, key and file name, so that an
    expected article "returns-and-refunds.md" matches the demo's source "Returns And Refunds".
    A citation that is not a knowledge document (a curated answer) counts with its title and
    snippet.
    """
    documents = {
        d.pk: d
        for d in Document.objects.for_tenant(tenant)
        .filter(pk__in=_int_ids(c.get("document_id") for c in citations))
        .select_related("source")
    }
    texts = {
        document_id: "\n".join(dict.fromkeys(text for _, text in rows))
        for document_id, rows in _group(
            Chunk.objects.for_tenant(tenant)
            .filter(document_id__in=documents)
            .order_by("document_id", "position")
            .values_list("document_id", "text")
        ).items()
    }
    names: dict[str, list[str]] = {}
    parts: list[str] = []
    for citation in citations:
        key = str(citation.get("document_id") or citation.get("chunk_id") or citation.get("n"))
        if key in names:
            continue
        document = documents.get(int(key)) if key.isdigit() else None
        if document is None:
            names[key] = [str(citation.get("title") or "")]
            parts.append(f"{citation.get('title') or ''}\n{citation.get('snippet') or ''}")
            continue
        names[key] = [
            document.source.name,
            document.title,
            document.key,
            Path(document.key).name,
            Path(document.url).name if document.url else "",
        ]
        parts.append(f"{document.title}\n{texts.get(document.pk, '')}")
    distinct = [list(dict.fromkeys(n for n in entry if n)) for entry in names.values()]
    return distinct, "\n".join(parts)


def _group(rows: Iterable[tuple[int, str]]) -> dict[int, list[tuple[int, str]]]:
    grouped: dict[int, list[tuple[int, str]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    return grouped


# --------------------------------------------------------------------------- running


AnswerFunction = Callable[..., Awaitable[Any]]


def _engine() -> AnswerFunction:
    return answer_question


def record_for(
    *,
    tenant: Tenant,
    question: SetQuestion,
    strategy: str,
    answer: Any = None,
    error: str = "",
    elapsed_ms: int | None = None,
) -> metrics.AnswerRecord:
    """The metrics' plain record of one engine answer (an EngineAnswer, or None on error)."""
    record = metrics.AnswerRecord(
        question=question.question,
        strategy=strategy,
        answerable=question.answerable,
        facts=question.facts,
        article=question.article,
        error=error,
        total_ms=elapsed_ms,
    )
    if answer is None:
        return record
    citations = list(answer.citations or [])
    cited, text = cited_sources(tenant=tenant, citations=citations)
    grounding = answer.grounding or {}
    record.content = answer.content or ""
    record.decision = answer.decision or ""
    record.outcome = str(grounding.get("outcome") or "")
    record.reason = str(grounding.get("reason") or "")
    record.signals = dict(grounding.get("signals") or {})
    record.answerability = answer.answerability
    record.cited_documents = cited
    record.citations = len(citations)
    record.sources_text = text
    record.first_token_ms = answer.first_token_ms
    record.total_ms = answer.total_ms if answer.total_ms is not None else elapsed_ms
    return record


def run_answer_set(
    *,
    tenant: Tenant,
    questions: Sequence[SetQuestion],
    strategies: Sequence[str] = STRATEGIES,
    limit: int | None = None,
    answer_question: AnswerFunction | None = None,
    progress: Callable[[int, int, metrics.AnswerRecord], None] | None = None,
) -> dict[str, Any]:
    """Ask every question (the first `limit`) with every strategy, one fresh call each, and
    score the answers. `answer_question` defaults to the engine's; `progress(done, total,
    record)` is called after each answer. Returns the report (plain JSON-able data)."""
    if limit is not None and limit < 1:
        raise AnswerSetError("--limit must be at least 1.")
    ask = answer_question or _engine()
    questions = list(questions)[:limit] if limit else list(questions)
    allowed = answer_numbers.knowledge_numbers(knowledge_text(tenant=tenant))
    scores: dict[str, list[metrics.AnswerScore]] = {s: [] for s in strategies}
    total = len(questions) * len(strategies)

    def score(question: SetQuestion, strategy: str, answer: Any, error: str, ms: int) -> None:
        record = record_for(
            tenant=tenant,
            question=question,
            strategy=strategy,
            answer=answer,
            error=error,
            elapsed_ms=ms,
        )
        scores[strategy].append(metrics.score_answer(record, allowed_numbers=allowed))
        if progress:
            progress(sum(len(v) for v in scores.values()), total, record)

    async def ask_all() -> None:
        # One event loop for the whole run, as in a chat server. Question by question, all
        # strategies in turn, so a change in the machine's load over the run affects every
        # strategy alike.
        for question in questions:
            for strategy in strategies:
                started = time.monotonic()
                try:
                    answer = await ask(
                        tenant=tenant, question=question.question, history=(), strategy=strategy
                    )
                    error = ""
                except Exception as exc:  # noqa: BLE001 - a failed answer is a result too
                    answer, error = None, f"{type(exc).__name__}: {exc}"
                elapsed = int((time.monotonic() - started) * 1000)
                await sync_to_async(score)(question, strategy, answer, error, elapsed)

    async_to_sync(ask_all)()
    return report(tenant=tenant, scores=scores)


def report(*, tenant: Tenant, scores: dict[str, list[metrics.AnswerScore]]) -> dict[str, Any]:
    results, failures = [], []
    for strategy, strategy_scores in scores.items():
        for score in strategy_scores:
            record = score.record
            entry = {
                "question": record.question,
                "strategy": strategy,
                "answerable": record.answerable,
                "article": record.article,
                "content": record.content,
                "decision": record.decision,
                "outcome": record.outcome,
                "declined": score.declined,
                "facts_expected": score.facts_expected,
                "facts_matched": score.facts_matched,
                "missing_facts": score.missing_facts,
                "invented_numbers": score.invented,
                "sentences_judged": score.sentences_judged,
                "unsupported_sentences": score.unsupported,
                "cited_documents": [list(names) for names in record.cited_documents],
                "citations": record.citations,
                "citation_precision": score.citation_precision,
                "markup": score.markup,
                "first_token_ms": record.first_token_ms,
                "total_ms": record.total_ms,
                "answerability": record.answerability,
                "reason": record.reason,
                "signals": record.signals,
                "error": record.error,
                "failures": score.failures,
            }
            results.append(entry)
            if score.failures:
                failures.append(
                    {
                        "question": record.question,
                        "strategy": strategy,
                        "answer": record.content,
                        "why": score.failures,
                    }
                )
    return {
        "tenant": tenant.slug,
        "strategies": list(scores),
        "support_threshold": metrics.SUPPORT_THRESHOLD,
        "summary": {s: metrics.summarize(v) for s, v in scores.items()},
        "results": results,
        "failures": failures,
    }


# --------------------------------------------------------------------------- the table

ROWS: tuple[tuple[str, str, str], ...] = (
    # (label, summary key, format)
    ("questions", "questions", "int"),
    ("  answerable", "answerable", "int"),
    ("  out of scope", "out_of_scope", "int"),
    ("errors", "errors", "int"),
    ("fact recall", "fact_recall", "rate"),
    ("questions with all facts", "questions_with_all_facts", "int"),
    ("invented-number rate", "invented_number_rate", "rate"),
    ("unsupported-sentence rate", "unsupported_sentence_rate", "rate"),
    ("  sentences judged", "sentences_judged", "int"),
    ("citation precision", "citation_precision", "rate"),
    ("abstention precision", "abstention_precision", "rate"),
    ("abstention recall (out of scope declined)", "abstention_recall", "rate"),
    ("answerable wrongly declined", "wrongly_declined_rate", "rate"),
    ("declined or handed off", "declined", "int"),
    ("answers with markup", "answers_with_markup", "int"),
    ("answers citing a document twice", "answers_citing_a_document_twice", "int"),
    ("TTFT p50 (ms)", "ttft_p50_ms", "ms"),
    ("TTFT p95 (ms)", "ttft_p95_ms", "ms"),
    ("total p50 (ms)", "total_p50_ms", "ms"),
    ("total p95 (ms)", "total_p95_ms", "ms"),
)


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "rate":
        return f"{value:.2f}"
    if kind == "ms":
        return f"{value:.0f}"
    return str(value)


def table(report_: dict[str, Any]) -> str:
    """The summary with the strategies side by side, as fixed-width text."""
    strategies = report_["strategies"]
    summary = report_["summary"]
    rows = [["metric", *strategies]]
    rows += [
        [label, *(_cell(summary[s][key], kind) for s in strategies)] for label, key, kind in ROWS
    ]
    outcomes = sorted({o for s in strategies for o in summary[s]["outcomes"]})
    rows += [
        [f"outcome {o}", *(str(summary[s]["outcomes"].get(o, 0)) for s in strategies)]
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def excerpt(text: str, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_json(report_: dict[str, Any]) -> str:
    return json.dumps(report_, indent=2, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)
