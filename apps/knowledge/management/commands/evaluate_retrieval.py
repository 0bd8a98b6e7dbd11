"""Score retrieval on a labelled corpus: hit@1/5/10, MRR@10, nDCG@10 per search mode.

    python manage.py evaluate_retrieval --corpus corpus.jsonl --questions questions.jsonl \
        [--json out.json] [--limit-questions N] [--modes hybrid,dense,sparse,hybrid-rrf]

Corpus lines: {"id", "title", "text", "url"}; question lines: {"id", "question", "gold_ids"}.
The corpus goes through the real pipeline into a throw-away tenant that is deleted afterwards
(rows and points), so it can run against any installation's store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.knowledge.evaluation import evaluate, load_corpus, load_questions
from apps.knowledge.vectorstore.base import SEARCH_MODES


class Command(BaseCommand):
    help = "Evaluate retrieval (hybrid, dense, sparse) on a JSONL corpus and question set."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--corpus", required=True, help="corpus JSONL: id, title, text, url")
        parser.add_argument(
            "--questions", required=True, help="questions JSONL: id, question, gold_ids"
        )
        parser.add_argument("--json", dest="json_path", help="also write the results here")
        parser.add_argument("--limit-questions", type=int, default=None)
        parser.add_argument("--modes", default=",".join(SEARCH_MODES))

    def handle(self, *args: Any, **options: Any) -> None:
        for key in ("corpus", "questions"):
            if not Path(options[key]).is_file():
                raise CommandError(f"--{key} {options[key]!r} is not a file")
        modes = [m.strip() for m in options["modes"].split(",") if m.strip()]
        allowed = {*SEARCH_MODES, "hybrid-convex", "hybrid-rrf"}
        unknown = set(modes) - allowed
        if unknown:
            raise CommandError(f"unknown modes {sorted(unknown)}; use {', '.join(sorted(allowed))}")
        corpus = load_corpus(options["corpus"])
        questions = load_questions(options["questions"], options["limit_questions"])
        if not corpus or not questions:
            raise CommandError("the corpus and the questions must not be empty")
        result = evaluate(
            corpus=corpus,
            questions=questions,
            modes=modes,
            log=lambda msg: self.stderr.write(msg),
        )
        self.stdout.write(
            f"{result.questions} questions, {result.corpus} corpus entries, {result.chunks} chunks"
        )
        self.stdout.write(result.table())
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(result.as_dict(), indent=2) + "\n")
            self.stdout.write(f"wrote {options['json_path']}")
