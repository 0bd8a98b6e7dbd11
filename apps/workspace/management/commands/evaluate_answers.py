"""Evaluate the assistant's answers.

Without `--set`: replay a tenant's evaluation cases (from agents' corrections) and report how
many pass. With `--set [PATH.jsonl]`: run a JSONL question set through the answer engine, once
per strategy, and print the answer metrics side by side (see docs/evaluation.md).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.tenants.models import Tenant
from apps.workspace import answer_set
from apps.workspace.evaluation import evaluate_tenant


class Command(BaseCommand):
    help = (
        "Replay the tenant's evaluation cases (from agents' corrections) through the assistant; "
        "report how many answers cite the expected sources and agree with the expected answer. "
        "With --set, run a JSONL question set through the answer engine for each strategy and "
        "report fact recall, invented numbers, unsupported sentences, citation precision, "
        "abstention and time to first token."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--tenant",
            help="The tenant's slug (required without --set; with --set the demo tenant, "
            f"{answer_set.DEMO_TENANT!r}, by default).",
        )
        parser.add_argument(
            "--min-similarity",
            type=float,
            default=None,
            help="Cosine similarity an answer needs with the expected one (EVAL_MIN_SIMILARITY, "
            "default 0.7). Evaluation cases only.",
        )
        parser.add_argument(
            "--set",
            dest="answer_set",
            nargs="?",
            const=str(answer_set.DEMO_SET),
            default=None,
            metavar="PATH.jsonl",
            help="Run this JSONL question set through the answer engine (without a path: the "
            "demo set, apps/tenants/demo/answers.jsonl).",
        )
        parser.add_argument(
            "--strategies",
            default=None,
            help="With --set: comma-separated strategies to compare "
            f"(default: {','.join(answer_set.STRATEGIES)}).",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="With --set: only the first N questions of the set.",
        )
        parser.add_argument("--json", action="store_true", help="Print the full report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["answer_set"] is None:
            if options["strategies"] is not None or options["limit"] is not None:
                raise CommandError("--strategies and --limit only apply with --set.")
            if not options["tenant"]:
                raise CommandError("--tenant is required (or run a question set with --set).")
            self._cases(
                tenant=self._tenant(options["tenant"]),
                min_similarity=options["min_similarity"],
                as_json=options["json"],
            )
            return
        self._set(**options)

    def _tenant(self, slug: str) -> Tenant:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {slug!r}.")
        return tenant

    def _set(self, **options: Any) -> None:
        try:
            strategies = answer_set.parse_strategies(options["strategies"])
            if options["limit"] is not None and options["limit"] < 1:
                raise answer_set.AnswerSetError("--limit must be at least 1.")
            questions = answer_set.load_answer_set(options["answer_set"])
        except answer_set.AnswerSetError as exc:
            raise CommandError(str(exc)) from exc
        slug = options["tenant"] or answer_set.DEMO_TENANT
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            hint = " (run `manage.py seed_demo` first)" if slug == answer_set.DEMO_TENANT else ""
            raise CommandError(f"No tenant with the slug {slug!r}{hint}.")

        def progress(done: int, total: int, record: Any) -> None:
            if options["verbosity"] >= 1:
                self.stderr.write(
                    f"[{done}/{total}] {record.strategy:<10} "
                    f"{answer_set.excerpt(record.question, 60)}"
                )

        try:
            report = answer_set.run_answer_set(
                tenant=tenant,
                questions=questions,
                strategies=strategies,
                limit=options["limit"],
                progress=progress,
            )
        except answer_set.AnswerSetError as exc:
            raise CommandError(str(exc)) from exc
        report["set"] = str(options["answer_set"])
        if options["json"]:
            self.stdout.write(answer_set.as_json(report))
            return
        self.stdout.write(
            f"{report['set']} on tenant {tenant.slug}: "
            f"{report['summary'][strategies[0]]['questions']} question(s) per strategy\n"
        )
        self.stdout.write(answer_set.table(report))
        self.stdout.write(f"\nFailures ({len(report['failures'])}):")
        for failure in report["failures"]:
            self.stdout.write(
                f"- [{failure['strategy']}] {failure['question']}\n"
                f"    answer: {answer_set.excerpt(failure['answer']) or '(empty)'}\n"
                + "".join(f"    why: {why}\n" for why in failure["why"])
            )

    def _cases(self, *, tenant: Tenant, min_similarity: float | None, as_json: bool) -> None:
        report = evaluate_tenant(tenant=tenant, min_similarity=min_similarity)
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
            return
        for r in report["results"]:
            mark = "PASS" if r["agrees"] and r["cites_expected"] is not False else "FAIL"
            self.stdout.write(
                f"{mark}  similarity={r['similarity']:.3f}  cites_expected={r['cites_expected']}"
                f"  judge={r['judge']}  {r['question'][:70]}"
            )
        self.stdout.write(
            f"{report['cases']} case(s) for {tenant.slug}: "
            f"{report['cite_expected_sources']}/{report['cases_with_expected_sources']} cite the "
            f"expected sources, {report['agree']}/{report['cases']} agree with the expected answer "
            f"(similarity ≥ {report['min_similarity']}"
            + (f", judge {report['judge_model']}" if report["judge_model"] else ", no judge")
            + ")."
        )
