"""Evaluate how the assistant chooses actions: a JSONL question set, each line
{"question": ..., "action": name | null, "params": {name: value}} (apps/actions/demo/questions.jsonl
by default). Reports the share of questions with the right action, the right parameters (of
those that name one), and no action for questions the articles answer. No HTTP call is made.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.actions import matching
from apps.actions.demo_orders import action_definitions
from apps.actions.models import Action
from apps.actions.selectors import action_list_active
from apps.assistant.actions_turn import llm_fill
from apps.assistant.retrieval import encode
from apps.tenants.models import Tenant

DEMO_SET = Path(__file__).resolve().parents[3] / "actions" / "demo" / "questions.jsonl"


def _demo_actions() -> list[Any]:
    """The demo tenant's two actions, unsaved (no database needed)."""
    actions = []
    for pk, definition in enumerate(action_definitions("https://orders.example.com"), start=1):
        definition = {k: v for k, v in definition.items() if k != "headers"}
        actions.append(Action(pk=pk, **definition))
    return actions


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = (
        "Run a question set through the action matcher: right action, right parameters, and no "
        "action for questions the help articles answer (rates per set)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--set", dest="path", default=str(DEMO_SET), metavar="PATH.jsonl")
        parser.add_argument(
            "--tenant",
            help="Use this tenant's active actions (default: the demo's two, unsaved).",
        )
        parser.add_argument(
            "--llm",
            action="store_true",
            help="Let the model fill parameters the matcher cannot find (ACTIONS_LLM_FILL).",
        )
        parser.add_argument("--verbose", action="store_true", help="Print every question.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"No question set at {path}.")
        cases = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']!r}.")
            actions = action_list_active(tenant=tenant)
        else:
            actions = _demo_actions()
        if not actions:
            raise CommandError("There are no active actions to evaluate.")

        rows, started = [], time.monotonic()
        for case in cases:
            choice = matching.choose(case["question"], actions, encode)
            params = dict(choice.params) if choice else {}
            if choice and options["llm"] and choice.missing:
                params.update(self._fill(choice.action, case["question"], choice.missing))
            got = choice.action.name if choice else None
            rows.append(
                {
                    "question": case["question"],
                    "expected": case.get("action"),
                    "chosen": got,
                    "score": choice.score if choice else None,
                    "params_expected": case.get("params") or {},
                    "params": params,
                    "action_ok": got == case.get("action"),
                    "params_ok": got == case.get("action") and params == (case.get("params") or {}),
                }
            )
        report = self._report(rows, time.monotonic() - started)
        if options["json"]:
            self.stdout.write(json.dumps({"report": report, "rows": rows}, indent=2))
            return
        if options["verbose"]:
            for row in rows:
                mark = "ok " if row["params_ok"] else "BAD"
                self.stdout.write(
                    f"{mark} {row['question'][:60]:<60} expected={row['expected']} "
                    f"chosen={row['chosen']} score={row['score']} params={row['params']}"
                )
        self.stdout.write(
            f"questions {report['questions']}: right action {report['right_action']:.1%}, "
            f"right parameters {report['right_params']:.1%} (of {report['action_questions']} "
            f"action questions), no action for article questions "
            f"{report['no_action_for_articles']:.1%} (of {report['article_questions']}); "
            f"{report['ms_per_question']:.0f} ms a question"
        )

    @staticmethod
    def _report(rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
        action_rows = [r for r in rows if r["expected"]]
        article_rows = [r for r in rows if not r["expected"]]
        return {
            "questions": len(rows),
            "action_questions": len(action_rows),
            "article_questions": len(article_rows),
            "right_action": sum(r["action_ok"] for r in rows) / max(1, len(rows)),
            "right_params": sum(r["params_ok"] for r in action_rows) / max(1, len(action_rows)),
            "no_action_for_articles": sum(r["chosen"] is None for r in article_rows)
            / max(1, len(article_rows)),
            "ms_per_question": 1000 * seconds / max(1, len(rows)),
        }

    @staticmethod
    def _fill(action: Any, question: str, names: list[str]) -> dict[str, Any]:

        return asyncio.run(llm_fill(action, question, names))
