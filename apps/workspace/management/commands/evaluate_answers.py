"""Replay a tenant's evaluation cases through the assistant and report how many pass."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.tenants.models import Tenant
from apps.workspace.evaluation import evaluate_tenant


class Command(BaseCommand):
    help = (
        "Replay the tenant's evaluation cases (from agents' corrections) through the assistant; "
        "report how many answers cite the expected sources and agree with the expected answer."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument(
            "--min-similarity",
            type=float,
            default=None,
            help="Cosine similarity an answer needs with the expected one (EVAL_MIN_SIMILARITY, "
            "default 0.7).",
        )
        parser.add_argument("--json", action="store_true", help="Print the full report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {options['tenant']!r}.")
        report = evaluate_tenant(tenant=tenant, min_similarity=options["min_similarity"])
        if options["json"]:
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
